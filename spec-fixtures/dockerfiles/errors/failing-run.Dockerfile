ARG BASE=sw-base
FROM $BASE
RUN echo to-stdout; echo to-stderr >&2; exit 3
