FROM scratch
COPY missing.txt /
