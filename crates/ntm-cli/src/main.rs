//! The `ntm` command line: prepare text, train, infer, evaluate, report, serve and run the demo.

mod commands;
mod logging;
mod progress;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Neural topic models, compatible with Amazon SageMaker's Neural Topic Model.
#[derive(Parser, Debug)]
#[command(name = "ntm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Turn raw text into SageMaker NTM channels (train, validation, test, auxiliary/vocab.txt).
    Prepare(commands::prepare::PrepareArgs),
    /// Train a model on SageMaker NTM channels.
    // Negative values reach the hyperparameter checks, which name the allowed range.
    #[command(allow_negative_numbers = true)]
    Train(Box<commands::train::TrainArgs>),
    /// Write the topic weights of every document of a channel as JSON Lines.
    Infer(commands::infer::InferArgs),
    /// Score a model's topics (coherence, diversity, WETC) and held-out perplexity on a reference.
    Evaluate(commands::evaluate::EvaluateArgs),
    /// Serve topic weights over HTTP as a SageMaker NTM inference endpoint.
    Serve(commands::serve::ServeArgs),
    /// Write one self-contained HTML page with a model's losses, topics, topic map and metrics.
    Report(commands::report::ReportArgs),
    /// Prepare the shipped 20 Newsgroups sample, train on it and print the topics.
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    logging::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(args) => commands::prepare::run(&args),
        Command::Train(args) => commands::train::run(&args),
        Command::Infer(args) => commands::infer::run(&args),
        Command::Evaluate(args) => commands::evaluate::run(&args),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Report(args) => commands::report::run(&args),
        Command::Demo(args) => commands::demo::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
