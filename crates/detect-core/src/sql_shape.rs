//! Reduces a database statement to its shape: literals become `?`, `IN (...)` lists collapse and
//! whitespace is normalised. N+1 detection compares shapes; no literal (and so no data value or secret)
//! survives into the shape.

/// The shape of a statement, at most [`MAX_SHAPE_LEN`] characters long.
pub fn statement_shape(statement: &str) -> String {
    let mut out = String::with_capacity(statement.len().min(MAX_SHAPE_LEN));
    let mut chars = statement.chars().peekable();
    let mut last_was_space = true;
    while let Some(c) = chars.next() {
        if out.len() >= MAX_SHAPE_LEN {
            break;
        }
        match c {
            '\'' => {
                // A string literal; '' inside it is an escaped quote.
                while let Some(d) = chars.next() {
                    if d == '\'' {
                        if chars.peek() == Some(&'\'') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                push_placeholder(&mut out);
                last_was_space = false;
            }
            c if c.is_ascii_digit() && !ends_in_identifier(&out) => {
                while chars
                    .peek()
                    .is_some_and(|d| d.is_ascii_alphanumeric() || *d == '.')
                {
                    chars.next();
                }
                push_placeholder(&mut out);
                last_was_space = false;
            }
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                // A positional parameter ($1): already a placeholder.
                while chars.peek().is_some_and(|d| d.is_ascii_digit()) {
                    chars.next();
                }
                push_placeholder(&mut out);
                last_was_space = false;
            }
            c if c.is_whitespace() => {
                if !last_was_space {
                    out.push(' ');
                    last_was_space = true;
                }
            }
            _ => {
                out.push(c);
                last_was_space = false;
            }
        }
    }
    collapse_lists(out.trim_end())
}

/// Shapes longer than this are cut: a shape is for grouping, not for reading back the statement.
pub const MAX_SHAPE_LEN: usize = 256;

fn push_placeholder(out: &mut String) {
    out.push('?');
}

fn ends_in_identifier(out: &str) -> bool {
    out.chars()
        .next_back()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `(?, ?, ?)` and `(?,?)` become `(?)` so that lists of different lengths have one shape.
fn collapse_lists(shape: &str) -> String {
    let mut out = String::with_capacity(shape.len());
    let mut rest = shape;
    while let Some(open) = rest.find("(?") {
        let (head, tail) = rest.split_at(open);
        out.push_str(head);
        let inner_end = tail.find(')');
        match inner_end {
            Some(end) if tail[1..end].chars().all(|c| matches!(c, '?' | ',' | ' ')) => {
                out.push_str("(?)");
                rest = &tail[end + 1..];
            }
            _ => {
                out.push_str("(?");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::statement_shape;

    #[test]
    fn literals_and_parameters_become_placeholders() {
        assert_eq!(
            statement_shape(
                "SELECT *  FROM orders\n WHERE id = 42 AND note = 'it''s' AND t2.x = $1"
            ),
            "SELECT * FROM orders WHERE id = ? AND note = ? AND t2.x = ?"
        );
    }

    #[test]
    fn in_lists_of_any_length_share_one_shape() {
        assert_eq!(
            statement_shape("select a from b where c in (1, 2, 3)"),
            statement_shape("select a from b where c in (7)")
        );
    }

    #[test]
    fn long_statements_are_cut() {
        let long = format!("SELECT {}", "a, ".repeat(500));
        assert!(statement_shape(&long).len() <= super::MAX_SHAPE_LEN + 3);
    }
}
