//! Named parameter tensors: the unit that the network, the optimizers and the artifact share.

/// One parameter tensor stored as a flat row-major `f32` buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    /// Stable name, used as the key in the model artifact (for example `encoder.0.weight`).
    pub name: String,
    /// Shape, row-major; weights of affine layers are stored `[in, out]`.
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values.
    pub data: Vec<f32>,
    /// Whether `weight_decay` applies. As in MXNet's name rule, weights and
    /// batch-norm scales are decayed, biases and batch-norm shifts are not.
    pub decay: bool,
}

impl Tensor {
    /// Creates a zero-filled tensor.
    pub fn zeros(name: impl Into<String>, shape: &[usize], decay: bool) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            data: vec![0.0; shape.iter().product()],
            decay,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// An ordered set of tensors. Gradients use a `ParamSet` of the same layout as
/// the parameters they belong to, so tensor `i` of one matches tensor `i` of the other.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ParamSet {
    /// The tensors, in a fixed order defined by the network.
    pub tensors: Vec<Tensor>,
}

impl ParamSet {
    /// Returns a set with the same names and shapes, every value zero.
    pub fn zeros_like(&self) -> Self {
        Self {
            tensors: self
                .tensors
                .iter()
                .map(|t| Tensor::zeros(t.name.clone(), &t.shape, t.decay))
                .collect(),
        }
    }

    /// Sets every value of every tensor to zero.
    pub fn fill_zero(&mut self) {
        for t in &mut self.tensors {
            t.data.fill(0.0);
        }
    }

    /// Looks a tensor up by name.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Looks a tensor up by name, mutably.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor> {
        self.tensors.iter_mut().find(|t| t.name == name)
    }

    /// Total number of values over all tensors.
    pub fn num_values(&self) -> usize {
        self.tensors.iter().map(Tensor::len).sum()
    }

    /// Whether every value of every tensor is finite.
    pub fn all_finite(&self) -> bool {
        self.tensors
            .iter()
            .all(|t| t.data.iter().all(|v| v.is_finite()))
    }
}
