ARG BASE=sw-base
FROM $BASE
USER nobody-here
RUN true
