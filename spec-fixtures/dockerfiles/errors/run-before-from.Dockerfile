# comment

RUN echo hi
FROM scratch
