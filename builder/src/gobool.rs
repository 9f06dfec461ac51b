//! Go's `strconv.ParseBool`: buildx and BuildKit read every boolean flag, option and build arg
//! with it, so slipway takes the same spellings everywhere from this one place.

/// `1 t T TRUE true True` and `0 f F FALSE false False`; anything else (the empty string too) is
/// not a boolean.
pub fn parse(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// True only for a spelling of true (what BuildKit does with an unreadable optional switch).
pub fn is_true(v: &str) -> bool {
    parse(v) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_gos_spellings_only() {
        for v in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(parse(v), Some(true), "{v}");
        }
        for v in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(parse(v), Some(false), "{v}");
        }
        for v in ["", "yes", "on", "tRUE", " true", "2"] {
            assert_eq!(parse(v), None, "{v}");
        }
        assert!(is_true("T") && !is_true("maybe") && !is_true("0"));
    }
}
