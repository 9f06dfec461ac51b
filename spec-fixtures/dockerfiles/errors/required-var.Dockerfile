FROM scratch
ENV X="${NOPE:?must be set}"
