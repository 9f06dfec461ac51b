FROM scratch
SHELL /bin/sh -c
