//! Helpers shared by the end-to-end tests: run the `ntm` binary, lay out channel folders and
//! read its log, inference output and model archive.

// Each test binary compiles this module and uses only some of its helpers.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

/// Exit status and captured output of one `ntm` run.
pub struct Run {
    /// The command line, for failure messages.
    pub command: String,
    /// Exit code; `None` when a signal ended the process.
    pub code: Option<i32>,
    /// Standard output, as bytes (`ntm infer` writes JSON Lines there).
    pub stdout: Vec<u8>,
    /// Standard error: the log, then `error: ...` on failure.
    pub stderr: String,
}

impl Run {
    /// Panics with the command and its log unless the run exited with 0.
    pub fn assert_success(&self) -> &Self {
        assert_eq!(
            self.code,
            Some(0),
            "`{}` failed; its standard error:\n{}",
            self.command,
            self.stderr
        );
        self
    }

    /// Panics unless the run exited with a non-zero code (a signal or panic does not count), and
    /// returns its `error:` message.
    pub fn assert_failure(&self) -> String {
        assert!(
            matches!(self.code, Some(code) if code != 0),
            "`{}` exited with {:?}, expected a non-zero exit code; its standard error:\n{}",
            self.command,
            self.code,
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked"),
            "`{}` panicked:\n{}",
            self.command,
            self.stderr
        );
        self.error_message()
    }

    /// Returns the text after `error: ` on standard error; empty when there is none.
    pub fn error_message(&self) -> String {
        self.stderr
            .lines()
            .filter_map(|line| line.strip_prefix("error: "))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Returns the log messages without their `[date time LEVEL thread] ` prefix.
    pub fn log_messages(&self) -> Vec<&str> {
        log_messages(&self.stderr)
    }
}

/// Runs the `ntm` binary with `args` in `dir`, with the default log level.
pub fn ntm(dir: &Path, args: &[&dyn AsRef<OsStr>]) -> Run {
    let args: Vec<&OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let command = std::iter::once("ntm".to_owned())
        .chain(args.iter().map(|a| a.to_string_lossy().into_owned()))
        .collect::<Vec<_>>()
        .join(" ");
    let output = Command::new(env!("CARGO_BIN_EXE_ntm"))
        .args(&args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap_or_else(|e| panic!("cannot start `{command}`: {e}"));
    Run {
        command,
        code: output.status.code(),
        stdout: output.stdout,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Returns the path of a fixture under `tests/data/`.
pub fn fixture(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
        .join(relative)
}

/// Copies `source` to `folder/name`, creating `folder`.
pub fn copy_into(source: &Path, folder: &Path, name: &str) -> PathBuf {
    fs::create_dir_all(folder).expect("create folder");
    let target = folder.join(name);
    fs::copy(source, &target).unwrap_or_else(|e| {
        panic!(
            "cannot copy {} to {}: {e}",
            source.display(),
            target.display()
        )
    });
    target
}

/// Builds a data folder `root/name` with `train/<file>`, and `validation/<file>` and
/// `auxiliary/vocab.txt` when given: the channel layout of `ntm train --data`.
pub fn csv_channels(
    root: &Path,
    name: &str,
    train: &Path,
    validation: Option<&Path>,
    vocab: Option<&Path>,
) -> PathBuf {
    let data = root.join(name);
    let file_name = |p: &Path| {
        p.file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned()
    };
    copy_into(train, &data.join("train"), &file_name(train));
    if let Some(validation) = validation {
        copy_into(validation, &data.join("validation"), &file_name(validation));
    }
    if let Some(vocab) = vocab {
        copy_into(vocab, &data.join("auxiliary"), "vocab.txt");
    }
    data
}

/// Strips the `[date time LEVEL thread] ` prefix of each log line; lines without one are skipped.
pub fn log_messages(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|line| line.starts_with('['))
        .filter_map(|line| line.split_once("] ").map(|(_, message)| message))
        .collect()
}

/// Extracts the values of `#quality_metric: host=algo-1, epoch=N, <channel> total_loss <loss>=X` lines, in
/// log order, as `(N, X)`.
pub fn quality_metrics(log: &str, channel: &str) -> Vec<(usize, f64)> {
    let middle = format!(", {channel} total_loss <loss>=");
    log_messages(log)
        .into_iter()
        .filter_map(|m| m.strip_prefix("#quality_metric: host=algo-1, epoch="))
        .filter_map(|rest| rest.split_once(middle.as_str()))
        .map(|(epoch, value)| {
            let epoch = epoch
                .parse()
                .expect("epoch number in a #quality_metric line");
            let value = value.parse().expect("loss value in a #quality_metric line");
            (epoch, value)
        })
        .collect()
}

/// Extracts the values of the `<prefix>Loss (name: value) <name>: X` lines, in log order; `prefix` is `""`
/// for training and `"validation "` or `"test "` for the other channels.
pub fn named_losses(log: &str, prefix: &str, name: &str) -> Vec<f64> {
    let start = format!("{prefix}Loss (name: value) {name}: ");
    log_messages(log)
        .into_iter()
        .filter_map(|m| m.strip_prefix(start.as_str()))
        .map(|value| value.parse().expect("loss value in a Loss line"))
        .collect()
}

/// Finds the final topic block: returns its header message and, per topic, its words in order.
pub fn topic_block(log: &str) -> (String, Vec<Vec<String>>) {
    let messages = log_messages(log);
    let start = messages
        .iter()
        .position(|m| m.starts_with("Topics from epoch:final"))
        .unwrap_or_else(|| panic!("no `Topics from epoch:final` line in the log:\n{log}"));
    let topics = messages[start + 1..]
        .iter()
        .map_while(|m| {
            // Topic lines read `[0.74] word word ...`, the bracket holding the topic's TU, or
            // `[0.21, 0.74] word ...` with the topic's WETC first.
            let (scores, words) = m.strip_prefix('[')?.split_once("] ")?;
            for score in scores.split(", ") {
                score.parse::<f64>().ok()?;
            }
            Some(words.split(' ').map(str::to_owned).collect())
        })
        .collect();
    (messages[start].to_owned(), topics)
}

/// Parses `ntm infer` output: one `{"topic_weights": [...]}` object per line.
pub fn topic_weights(jsonl: &[u8]) -> Vec<Vec<f64>> {
    let text = std::str::from_utf8(jsonl).expect("inference output is UTF-8");
    text.lines()
        .enumerate()
        .map(|(i, line)| {
            let value: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("line {} is not JSON ({e}): {line}", i + 1));
            value["topic_weights"]
                .as_array()
                .unwrap_or_else(|| panic!("line {} has no topic_weights list: {line}", i + 1))
                .iter()
                .map(|w| w.as_f64().expect("topic weight is a number"))
                .collect()
        })
        .collect()
}

/// Reads member `name` of a gzip-compressed tar file.
pub fn tar_member(archive: &Path, name: &str) -> Vec<u8> {
    let file = fs::File::open(archive)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", archive.display()));
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.path().expect("tar entry path").as_os_str() == name {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).expect("read tar entry");
            return bytes;
        }
    }
    panic!("{} has no member {name}", archive.display());
}

/// Lists the entry names of a folder, sorted; empty when the folder does not exist.
pub fn entries(folder: &Path) -> Vec<String> {
    let Ok(dir) = fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut names: Vec<String> = dir
        .map(|e| {
            e.expect("folder entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// Reads the lines of a text file.
pub fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Prepares the newsgroup sample into `root/name`: 10% validation, the test posts, newsgroup
/// headers stripped, words in at least 2 posts, at most 500 words. Returns the channel folder.
pub fn prepare_newsgroups(root: &Path, name: &str, format: &str) -> PathBuf {
    let output = root.join(name);
    let train = fixture("newsgroups-train.jsonl.gz");
    let test = fixture("newsgroups-test.jsonl.gz");
    ntm(
        root,
        &[
            &"prepare",
            &train,
            &"--test",
            &test,
            &"--output",
            &output,
            &"--format",
            &format,
            &"--strip-newsgroup",
            &"--validation-fraction",
            &"0.1",
            &"--min-df",
            &"2",
            &"--max-features",
            &"500",
        ],
    )
    .assert_success();
    output
}

/// Runs `ntm evaluate --json` on `model` against `reference`, with the `extra` flags, and returns
/// its report. Fails the test when the command fails.
pub fn evaluate_json(
    root: &Path,
    model: &Path,
    reference: &Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![
        &"evaluate",
        &"--model",
        &model,
        &"--reference",
        &reference,
        &"--json",
    ];
    for flag in extra {
        args.push(flag);
    }
    let run = ntm(root, &args);
    run.assert_success();
    serde_json::from_slice(&run.stdout).expect("evaluate --json prints JSON")
}

/// Lays out the four-block corpus's training channel and vocabulary under `root/data` and
/// returns that data folder.
pub fn four_block_data(root: &Path) -> PathBuf {
    csv_channels(
        root,
        "data",
        &fixture("four-block-corpus/train.csv"),
        None,
        Some(&fixture("four-block-corpus/vocab.txt")),
    )
}

/// Reads the log of a child started with a piped standard error until a line contains
/// `marker`, then sends each of `signals` (`kill` options such as `-TERM`) in turn. Returns the
/// whole log and the exit code.
pub fn signal_after(mut child: Child, marker: &str, signals: &[&str]) -> (String, Option<i32>) {
    let stderr = child.stderr.take().expect("a piped standard error");
    let mut log = String::new();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.expect("log line");
        log.push_str(&line);
        log.push('\n');
        if line.contains(marker) {
            for signal in signals {
                let status = Command::new("kill")
                    .args([*signal, &child.id().to_string()])
                    .status()
                    .expect("kill");
                assert!(status.success(), "kill {signal} failed");
            }
            break;
        }
    }
    for line in lines {
        log.push_str(&line.expect("log line"));
        log.push('\n');
    }
    let status = child.wait().expect("wait");
    (log, status.code())
}

/// Trains a 4-topic model on the four-block corpus's CSV channels (set up under `root/data`)
/// with one thread, `epochs` epochs and the extra `flags`, writing into `root/output`.
/// Returns the run and the output folder.
pub fn train_four_block(root: &Path, output: &str, epochs: &str, flags: &[&str]) -> (Run, PathBuf) {
    let data = four_block_data(root);
    let output = root.join(output);
    let mut args: Vec<&dyn AsRef<OsStr>> = vec![
        &"train",
        &"--data",
        &data,
        &"--output",
        &output,
        &"--num-topics",
        &"4",
        &"--epochs",
        &epochs,
        &"--threads",
        &"1",
    ];
    for flag in flags {
        args.push(flag);
    }
    (ntm(root, &args), output)
}

/// Trains a 5-topic model on a prepared channel folder with one thread, batches of 32 and the
/// given seed and epoch count, writing into `output`. Returns the run.
pub fn train_small(root: &Path, data: &Path, output: &Path, seed: &str, epochs: &str) -> Run {
    let run = ntm(
        root,
        &[
            &"train",
            &"--data",
            &data,
            &"--output",
            &output,
            &"--num-topics",
            &"5",
            &"--epochs",
            &epochs,
            &"--mini-batch-size",
            &"32",
            &"--seed",
            &seed,
            &"--threads",
            &"1",
        ],
    );
    run.assert_success();
    run
}
