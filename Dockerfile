# Steer server image: a thin wrapper over the same scripts CI runs (scripts/build.sh, models/*.sh).
#
#   docker build -t steer .                                   # CPU
#   docker build -t steer-cuda --build-arg BASE=nvidia/cuda:12.8.1-devel-ubuntu24.04 \
#       --build-arg RUNTIME=nvidia/cuda:12.8.1-runtime-ubuntu24.04 --build-arg STEER_CUDA=ON \
#       --build-arg STEER_CUDA_ARCHS=90 .                     # CUDA (H100: 90; list several as "80;89;90")
#   docker run -p 8080:8080 -v ~/.cache/steer:/root/.cache/steer steer                       # Gemma 3 270M
#   docker run -p 8080:8080 -v /models:/models steer --model /models/x.gguf                 # your model
#   docker run --gpus all -p 8080:8080 steer-cuda --gpu-layers -1
ARG BASE=ubuntu:24.04
ARG RUNTIME=ubuntu:24.04

FROM ${BASE} AS build
ARG STEER_CUDA=OFF
ARG STEER_CUDA_ARCHS=native
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openjdk-21-jdk-headless maven cmake ninja-build g++ git ccache npm python3 python3-pip curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN STEER_CUDA=${STEER_CUDA} STEER_CUDA_ARCHS=${STEER_CUDA_ARCHS} bash scripts/build.sh

FROM ${RUNTIME}
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      openjdk-21-jre-headless python3 python3-pip curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/server/target/steer-server.jar /app/steer-server.jar
COPY --from=build /src/models /app/models
COPY docker-entrypoint.sh scripts/jvm.options /app/
ENV STEER_HOST=0.0.0.0 STEER_PORT=8080
EXPOSE 8080
ENTRYPOINT ["bash", "/app/docker-entrypoint.sh"]
