# The ntm image for SageMaker: `docker run IMAGE train` runs a training job from /opt/ml,
# `docker run IMAGE serve` serves /opt/ml/model on port 8080 (or SAGEMAKER_BIND_TO_PORT).
# See docs/serving.md for building, pushing to ECR and creating SageMaker resources.

# Build stage. The AVX-512 kernels need Rust 1.89.
FROM rust:1.89-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p ntm-cli

# Run stage: the binary alone on the same Debian release, so its glibc matches.
# Nothing is placed under /opt/ml, which SageMaker reserves and mounts at run time.
FROM debian:bookworm-slim
COPY --from=build /src/target/release/ntm /usr/local/bin/ntm
LABEL com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true
EXPOSE 8080
# Exec form, so `train` and `serve` arrive as arguments and SIGTERM reaches ntm directly.
ENTRYPOINT ["ntm"]
