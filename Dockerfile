# hwnas: the API, a worker, a Ray node or a profiler agent (the command decides). CPU build of torch.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 HWNAS_HOME=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY common common
COPY lut lut
COPY profilers profilers
COPY search search
COPY deploy deploy
COPY service service
RUN pip install "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu \
    && pip install ".[ray]"
RUN useradd --create-home --uid 1000 hwnas && mkdir -p /data /artifacts \
    && chown hwnas /data /artifacts
USER hwnas
EXPOSE 8000
CMD ["hwnas", "serve", "--host", "0.0.0.0", "--port", "8000"]
