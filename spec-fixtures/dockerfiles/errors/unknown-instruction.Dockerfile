FROM scratch
FOO bar
