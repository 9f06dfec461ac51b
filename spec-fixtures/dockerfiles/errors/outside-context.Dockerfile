FROM scratch
COPY ../outside /
