FROM scratch
COPY *.nomatch /
