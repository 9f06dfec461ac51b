FROM scratch
ADD https://example.com/x.tar.gz /
