# Identity Broker: gunicorn + Flask, state in an external Redis (REDIS_URL).
#
#   docker build -t identity-broker .
#   docker run -p 8000:8000 -e REDIS_URL=redis://redis:6379/0 \
#     -e BROKER_CREDENTIALS=AKIDPROD:<secret of 16+ characters> identity-broker
#
# BASE_IMAGE lets a build use a local stand-in for python:3.11-slim where public images
# cannot be pulled: docker build --build-arg BASE_IMAGE=localhost/python:3.11-slim .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /app

# Dependencies first, pinned and hash-checked, in their own layer: a code change does not
# reinstall them.
COPY requirements.lock ./
RUN pip install --require-hashes --no-cache-dir -r requirements.lock

RUN groupadd --gid 10001 broker \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin broker

# Code is owned by root and read-only for the service user.
COPY app.py wsgi.py ./
COPY broker/ broker/
COPY config/ config/

USER 10001:10001
EXPOSE 8000

# Listen on every interface inside the container. config/settings.py refuses the built-in
# development key pair off loopback, so BROKER_CREDENTIALS (ACCESS_KEY_ID:SECRET pairs,
# comma-separated) is mandatory with this image: without it the workers exit at start with
# "BROKER_CREDENTIALS is required when BROKER_BIND is not a loopback address".
# Set BROKER_ISSUER to the public URL clients and token verifiers use.
ENV BROKER_BIND=0.0.0.0:8000

# No curl in the slim image: ask /readyz (Redis answers, signing key loaded) with urllib,
# on the port of BROKER_BIND.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; port = os.environ.get('BROKER_BIND', '0.0.0.0:8000').rpartition(':')[2]; urllib.request.urlopen(f'http://127.0.0.1:{port}/readyz', timeout=4)"]

ENTRYPOINT ["gunicorn", "-c", "config/gunicorn.conf.py", "wsgi:app"]
