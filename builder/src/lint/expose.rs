//! ExposeProtoCasing and ExposeInvalidFormat: EXPOSE's ports.

use super::check::Checker;
use super::*;

/// ExposeProtoCasing and ExposeInvalidFormat, as BuildKit's `parsePort` splits a port.
pub(super) fn expose(c: &mut Checker, cfg: &Config, raw: &str, lines: (usize, usize)) {
    let parts: Vec<&str> = raw.split(':').collect();
    let (ip, host, container) = match parts.len() {
        1 => ("", "", parts[0]),
        2 => ("", parts[0], parts[1]),
        n => (&raw[..raw.len() - parts[n - 1].len() - parts[n - 2].len() - 2], parts[n - 2], parts[n - 1]),
    };
    let proto = container.split_once('/').map_or("", |(_, p)| p);
    if proto != proto.to_lowercase() {
        c.warn(
            cfg,
            &EXPOSE_PROTO_CASING,
            format!("Defined protocol '{raw}' in EXPOSE instruction should be lowercase"),
            lines,
        );
    }
    if !ip.is_empty() || !host.is_empty() {
        let msg = format!("EXPOSE instruction should not define an IP address or host-port mapping, found '{raw}'");
        c.warn(cfg, &EXPOSE_INVALID_FORMAT, msg, lines);
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::tests::{lint, w, Found};

    #[test]
    fn rows_from_buildkits_check_tests() {
        // Each row: a Dockerfile and the warnings BuildKit's dockerfile_check_test.go expects
        // (the test function named in the comment).
        let rows: Vec<(&str, Vec<Found>)> = vec![
            // testExposeProtoCasing
            (
                "\nFROM scratch\nEXPOSE 80/TcP 8080/TCP 8080/udp\n",
                vec![
                    w("ExposeProtoCasing", 3, "Defined protocol '80/TcP' in EXPOSE instruction should be lowercase"),
                    w("ExposeProtoCasing", 3, "Defined protocol '8080/TCP' in EXPOSE instruction should be lowercase"),
                ],
            ),
            // testExposeInvalidFormat
            (
                "\nFROM scratch\nEXPOSE 127.0.0.1:80:80 [::1]:8080:8080 5000:5000 8000\n",
                vec![
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '127.0.0.1:80:80'"),
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '5000:5000'"),
                    w("ExposeInvalidFormat", 3, "EXPOSE instruction should not define an IP address or host-port mapping, found '[::1]:8080:8080'"),
                ],
            ),
        ];
        for (src, want) in rows {
            assert_eq!(lint(src), want, "{src}");
        }
    }
}
