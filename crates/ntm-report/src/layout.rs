//! The 2-D topic map: topic word distributions, their Jensen-Shannon distances and a
//! classical multidimensional scaling (MDS) of those distances.

use crate::error::ReportError;

/// Sweeps of the Jacobi eigenvalue method before it gives up on further accuracy; 100 is far
/// more than the 6 to 15 sweeps that symmetric matrices usually need.
const MAX_JACOBI_SWEEPS: usize = 100;

/// Points of a 2-D layout and how much of the distance structure the two axes keep.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// `[x, y]` of each item, in the units of the input distances.
    pub points: Vec<[f64; 2]>,
    /// Share of the positive eigenvalue mass of the centred Gram matrix that the two axes
    /// carry, in `[0, 1]`; 1 when the distances are exactly Euclidean in two dimensions.
    pub explained: f64,
}

/// Returns each topic's word distribution, the softmax of its decoder column.
///
/// `decoder` is row-major `[vocab_size, num_topics]`, entry `(v, k)` the weight of word `v`
/// in topic `k`, as `model.safetensors` stores `decoder.weight`. The decoder bias is left
/// out because it contains the background word frequencies that all topics share.
pub fn topic_word_distributions(
    decoder: &[f32],
    vocab_size: usize,
    num_topics: usize,
) -> Result<Vec<Vec<f64>>, ReportError> {
    if decoder.len() != vocab_size * num_topics {
        return Err(ReportError::Shape {
            what: "decoder weight",
            expected: format!(
                "{vocab_size} × {num_topics} = {} values",
                vocab_size * num_topics
            ),
            found: decoder.len(),
        });
    }
    let mut distributions = Vec::with_capacity(num_topics);
    for k in 0..num_topics {
        let column: Vec<f64> = (0..vocab_size)
            .map(|v| f64::from(decoder[v * num_topics + k]))
            .collect();
        if let Some(v) = column.iter().position(|w| !w.is_finite()) {
            return Err(ReportError::NonFinite {
                what: format!("decoder weight of word {v} in topic {k}"),
                value: column[v],
            });
        }
        let max = column.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let exp: Vec<f64> = column.iter().map(|w| (w - max).exp()).collect();
        let sum: f64 = exp.iter().sum();
        distributions.push(exp.into_iter().map(|e| e / sum).collect());
    }
    Ok(distributions)
}

/// Returns the Jensen-Shannon distance of two distributions over the same words: the square
/// root of the Jensen-Shannon divergence in bits, so it lies in `[0, 1]`.
pub fn jensen_shannon_distance(p: &[f64], q: &[f64]) -> f64 {
    debug_assert_eq!(p.len(), q.len());
    // JSD = Σ_w ½ p log2(p / m) + ½ q log2(q / m) with m = (p + q) / 2; zero terms drop out.
    let mut divergence = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        let m = 0.5 * (a + b);
        if a > 0.0 {
            divergence += 0.5 * a * (a / m).log2();
        }
        if b > 0.0 {
            divergence += 0.5 * b * (b / m).log2();
        }
    }
    // Rounding can leave a tiny negative divergence for identical inputs.
    divergence.clamp(0.0, 1.0).sqrt()
}

/// Returns the symmetric matrix of pairwise Jensen-Shannon distances, row-major `n × n`.
pub fn jensen_shannon_matrix(distributions: &[Vec<f64>]) -> Vec<f64> {
    let n = distributions.len();
    let mut distances = vec![0.0; n * n];
    for i in 0..n {
        for j in i + 1..n {
            let d = jensen_shannon_distance(&distributions[i], &distributions[j]);
            distances[i * n + j] = d;
            distances[j * n + i] = d;
        }
    }
    distances
}

/// Lays out `n` items in two dimensions by classical (Torgerson) multidimensional scaling of
/// their distance matrix, row-major `n × n`.
///
/// The squared distances are double-centred into `B = -½ J D² J`, and the coordinates are
/// the two leading eigenvectors of `B` scaled by the square roots of their eigenvalues. A
/// negative eigenvalue, which non-Euclidean distances can give, contributes a zero axis. Each
/// axis is signed so that its largest-magnitude coordinate is positive, which makes the
/// layout a pure function of the distances.
pub fn classical_mds(distances: &[f64], n: usize) -> Result<Layout, ReportError> {
    if distances.len() != n * n {
        return Err(ReportError::Shape {
            what: "distance matrix",
            expected: format!("{n} × {n} = {} values", n * n),
            found: distances.len(),
        });
    }
    if let Some(i) = distances.iter().position(|d| !d.is_finite()) {
        return Err(ReportError::NonFinite {
            what: format!("distance between items {} and {}", i / n, i % n),
            value: distances[i],
        });
    }
    if n == 0 {
        return Ok(Layout {
            points: Vec::new(),
            explained: 1.0,
        });
    }

    let squared: Vec<f64> = distances.iter().map(|d| d * d).collect();
    let row_means: Vec<f64> = (0..n)
        .map(|i| squared[i * n..(i + 1) * n].iter().sum::<f64>() / n as f64)
        .collect();
    let grand_mean = row_means.iter().sum::<f64>() / n as f64;
    let mut gram = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..n {
            // Symmetrise while centring, so that a slightly asymmetric input stays usable.
            let d2 = 0.5 * (squared[i * n + j] + squared[j * n + i]);
            gram[i * n + j] = -0.5 * (d2 - row_means[i] - row_means[j] + grand_mean);
        }
    }

    let (values, vectors) = symmetric_eigen(&gram, n);
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));

    // Eigenvalues within rounding error of zero count as zero, so that distances that fit
    // on a line give an exactly flat second axis.
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let tolerance = largest * 1e-12;
    let positive_mass: f64 = values.iter().filter(|&&v| v > tolerance).sum();
    let mut points = vec![[0.0; 2]; n];
    let mut kept_mass = 0.0;
    for (axis, &column) in order.iter().take(2).enumerate() {
        let value = values[column];
        if value <= tolerance {
            continue;
        }
        kept_mass += value;
        let scale = value.sqrt();
        let mut largest = 0;
        for i in 1..n {
            if vectors[i * n + column].abs() > vectors[largest * n + column].abs() {
                largest = i;
            }
        }
        let sign = if vectors[largest * n + column] < 0.0 {
            -1.0
        } else {
            1.0
        };
        for (i, point) in points.iter_mut().enumerate() {
            point[axis] = sign * scale * vectors[i * n + column];
        }
    }
    let explained = if positive_mass > 0.0 {
        (kept_mass / positive_mass).clamp(0.0, 1.0)
    } else {
        1.0
    };
    Ok(Layout { points, explained })
}

/// Computes the eigenvalues and eigenvectors of a symmetric `n × n` matrix by the cyclic
/// Jacobi method. Returns the eigenvalues and the row-major matrix whose column `j` is the
/// unit eigenvector of eigenvalue `j`.
///
/// NOTE: each sweep costs `O(n³)`, which is fine for the topic counts that maps are read at
/// but takes tens of seconds near SageMaker's limit of 1000 topics.
fn symmetric_eigen(matrix: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = matrix.to_vec();
    let mut vectors = vec![0.0; n * n];
    for i in 0..n {
        vectors[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().max(f64::MIN_POSITIVE);
    for _ in 0..MAX_JACOBI_SWEEPS {
        let off_diagonal: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        if off_diagonal <= scale * 1e-30 {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                // The rotation angle φ zeroes a[p][q]: t = tan φ is the smaller root of
                // t² + 2θt − 1 = 0 with θ = (a_qq − a_pp) / (2 a_pq).
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (vectors[k * n + p], vectors[k * n + q]);
                    vectors[k * n + p] = c * vkp - s * vkq;
                    vectors[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let values = (0..n).map(|i| a[i * n + i]).collect();
    (values, vectors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn euclidean(points: &[[f64; 2]]) -> Vec<f64> {
        let n = points.len();
        let mut d = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                let dx = points[i][0] - points[j][0];
                let dy = points[i][1] - points[j][1];
                d[i * n + j] = (dx * dx + dy * dy).sqrt();
            }
        }
        d
    }

    #[test]
    fn mds_recovers_planar_distances() {
        // A 3-4-5 right triangle plus an off-centre fourth point.
        let original = [[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [2.0, 1.5]];
        let distances = euclidean(&original);
        let layout = classical_mds(&distances, 4).expect("layout");
        let recovered = euclidean(&layout.points);
        for (i, (a, b)) in distances.iter().zip(&recovered).enumerate() {
            assert!(
                (a - b).abs() < 1e-9,
                "pair ({}, {}): distance {a}, recovered {b}",
                i / 4,
                i % 4
            );
        }
        assert!(
            (layout.explained - 1.0).abs() < 1e-9,
            "{}",
            layout.explained
        );
    }

    #[test]
    fn mds_centres_the_layout() {
        let original = [[1.0, 7.0], [4.0, 7.0], [1.0, 11.0], [9.0, -2.0], [0.5, 0.5]];
        let layout = classical_mds(&euclidean(&original), 5).expect("layout");
        for axis in 0..2 {
            let mean: f64 = layout.points.iter().map(|p| p[axis]).sum::<f64>() / 5.0;
            assert!(mean.abs() < 1e-9, "axis {axis} mean {mean}");
        }
    }

    #[test]
    fn mds_of_collinear_points_has_zero_second_axis() {
        let original = [[0.0, 0.0], [1.0, 0.0], [3.0, 0.0]];
        let layout = classical_mds(&euclidean(&original), 3).expect("layout");
        let xs: Vec<f64> = layout.points.iter().map(|p| p[0]).collect();
        assert!((xs[1] - xs[0] - 1.0).abs() < 1e-9, "{xs:?}");
        assert!((xs[2] - xs[1] - 2.0).abs() < 1e-9, "{xs:?}");
        for p in &layout.points {
            assert!(p[1].abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn mds_signs_are_fixed_by_largest_coordinate() {
        let original = [[0.0, 0.0], [5.0, 0.0], [1.0, 2.0], [-3.0, -1.0]];
        let layout = classical_mds(&euclidean(&original), 4).expect("layout");
        for axis in 0..2 {
            let largest = layout
                .points
                .iter()
                .map(|p| p[axis])
                .max_by(|a, b| a.abs().total_cmp(&b.abs()))
                .expect("points");
            assert!(largest > 0.0, "axis {axis}: largest coordinate {largest}");
        }
    }

    #[test]
    fn mds_handles_empty_and_single_item() {
        assert!(classical_mds(&[], 0).expect("empty").points.is_empty());
        let one = classical_mds(&[0.0], 1).expect("one item");
        assert_eq!(one.points, vec![[0.0, 0.0]]);
    }

    #[test]
    fn mds_rejects_wrong_shape_and_nan() {
        let error = classical_mds(&[0.0, 1.0, 1.0], 2).expect_err("3 values for 2 × 2");
        assert!(error.to_string().contains("2 × 2 = 4"), "{error}");
        let error = classical_mds(&[0.0, f64::NAN, 1.0, 0.0], 2).expect_err("NaN");
        assert!(error.to_string().contains("items 0 and 1"), "{error}");
    }

    #[test]
    fn eigen_reconstructs_matrix() {
        let n = 4;
        let m = [
            4.0, 1.0, -2.0, 0.5, 1.0, 3.0, 0.0, 1.5, -2.0, 0.0, 5.0, -1.0, 0.5, 1.5, -1.0, 2.0,
        ];
        let (values, vectors) = symmetric_eigen(&m, n);
        for i in 0..n {
            for j in 0..n {
                let rebuilt: f64 = (0..n)
                    .map(|k| vectors[i * n + k] * values[k] * vectors[j * n + k])
                    .sum();
                assert!(
                    (rebuilt - m[i * n + j]).abs() < 1e-10,
                    "entry ({i}, {j}): {rebuilt} vs {}",
                    m[i * n + j]
                );
            }
        }
    }

    #[test]
    fn js_distance_bounds() {
        let p = [0.5, 0.5, 0.0, 0.0];
        let q = [0.0, 0.0, 0.25, 0.75];
        assert_eq!(jensen_shannon_distance(&p, &p), 0.0);
        assert!((jensen_shannon_distance(&p, &q) - 1.0).abs() < 1e-12);
        // Half the mass shared: JSD = 0.5 bits, distance √0.5.
        let r = [0.5, 0.0, 0.5, 0.0];
        let s = [0.5, 0.0, 0.0, 0.5];
        let d = jensen_shannon_distance(&r, &s);
        assert!((d - 0.5f64.sqrt()).abs() < 1e-12, "{d}");
        assert_eq!(d, jensen_shannon_distance(&s, &r));
    }

    #[test]
    fn distributions_are_column_softmax() {
        // 3 words, 2 topics; topic 1 has equal weights.
        let decoder = [0.0, 1.0, 1.0, 1.0, 2.0, 1.0];
        let dist = topic_word_distributions(&decoder, 3, 2).expect("distributions");
        let e = std::f64::consts::E;
        let z = 1.0 + e + e * e;
        assert!((dist[0][0] - 1.0 / z).abs() < 1e-12);
        assert!((dist[0][2] - e * e / z).abs() < 1e-12);
        for p in &dist[1] {
            assert!((p - 1.0 / 3.0).abs() < 1e-12);
        }
        let error = topic_word_distributions(&decoder, 4, 2).expect_err("shape");
        assert!(error.to_string().contains("found 6"), "{error}");
        let error = topic_word_distributions(&[0.0, f32::INFINITY], 1, 2).expect_err("inf");
        assert!(error.to_string().contains("topic 1"), "{error}");
    }
}
