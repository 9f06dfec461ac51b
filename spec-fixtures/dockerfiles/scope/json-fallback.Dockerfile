FROM scratch
CMD [not json]
ENTRYPOINT echo hi
CMD ["json", "form"]
