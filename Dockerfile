# One image for every Vanta process; the command chooses the role.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 vanta
COPY pyproject.toml README.md constraints.txt ./
COPY src ./src
# The versions CI tested (constraints.txt, from scripts/lock.sh); only the runtime extras.
RUN pip install --no-cache-dir -c constraints.txt ".[crypto]"
USER vanta
ENV VANTA_DATA_DIR=/home/vanta/data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request,sys; \
sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz').status == 200 else 1)"
CMD ["vanta", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-dispatcher"]
