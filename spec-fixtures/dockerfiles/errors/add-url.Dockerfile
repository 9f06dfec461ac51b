FROM scratch
ADD http://127.0.0.1:1/x.tar.gz /
