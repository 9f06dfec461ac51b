FROM scratch
COPY --from=nosuchstage /a /b
