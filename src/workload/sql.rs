//! SQL text with `$name` parameters: rewritten to `$1, $2, ...` for a prepared statement,
//! skipping string literals, quoted identifiers, comments and dollar quotes.

/// A statement ready to prepare: the text with numbered placeholders, and for each number the
/// parameter name it stands for.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub text: String,
    pub params: Vec<String>,
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Rewrite `$name` to `$N` (the same name gets the same number).
pub fn compile(sql: &str) -> Statement {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut params: Vec<String> = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\'' | '"' => {
                let end = find_close(&chars, i + 1, c);
                out.extend(&chars[i..end]);
                i = end;
            }
            '-' if chars.get(i + 1) == Some(&'-') => {
                let end = chars[i..]
                    .iter()
                    .position(|&c| c == '\n')
                    .map_or(chars.len(), |p| i + p);
                out.extend(&chars[i..end]);
                i = end;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                let end = find_seq(&chars, i + 2, &['*', '/']).map_or(chars.len(), |p| p + 2);
                out.extend(&chars[i..end]);
                i = end;
            }
            '$' => {
                let start = i + 1;
                let mut j = start;
                while j < chars.len() && is_ident(chars[j]) {
                    j += 1;
                }
                let word: String = chars[start..j].iter().collect();
                if chars.get(j) == Some(&'$') {
                    // A dollar quote: $tag$ ... $tag$ (or $$ ... $$).
                    let tag: Vec<char> = chars[i..=j].to_vec();
                    let end = find_seq(&chars, j + 1, &tag).map_or(chars.len(), |p| p + tag.len());
                    out.extend(&chars[i..end]);
                    i = end;
                } else if !word.is_empty() && is_ident_start(word.chars().next().unwrap()) {
                    let n = match params.iter().position(|p| *p == word) {
                        Some(p) => p + 1,
                        None => {
                            params.push(word);
                            params.len()
                        }
                    };
                    out.push_str(&format!("${n}"));
                    i = j;
                } else {
                    out.push('$');
                    i += 1;
                }
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Statement { text: out, params }
}

fn find_close(chars: &[char], from: usize, quote: char) -> usize {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == quote {
            if chars.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

fn find_seq(chars: &[char], from: usize, seq: &[char]) -> Option<usize> {
    (from..chars.len().saturating_sub(seq.len() - 1)).find(|&i| chars[i..].starts_with(seq))
}

/// Names a statement makes available to the later statements of its transaction: the output
/// columns of a `RETURNING` clause (`RETURNING id AS order_id` gives `order_id`, `RETURNING id`
/// gives `id`) or of a `SELECT` list. Best effort for validation; at run time the prepared
/// statement's real column names are used.
pub fn output_names(sql: &str) -> Vec<String> {
    let lower = sql.to_ascii_lowercase();
    let list = if let Some(p) = find_word(&lower, "returning") {
        &sql[p + "returning".len()..]
    } else if lower.trim_start().starts_with("select") || lower.trim_start().starts_with("with") {
        let start = find_word(&lower, "select").map_or(0, |p| p + "select".len());
        let end = find_word(&lower[start..], "from").map_or(sql.len(), |p| start + p);
        &sql[start..end]
    } else {
        return vec![];
    };
    split_top_level(list)
        .iter()
        .filter_map(|item| {
            let words: Vec<&str> = item.split_whitespace().collect();
            let last = *words.last()?;
            let name = last.trim_matches('"');
            let name = name.rsplit('.').next().unwrap_or(name);
            (name.chars().next().is_some_and(is_ident_start) && name.chars().all(is_ident))
                .then(|| name.to_string())
        })
        .collect()
}

fn find_word(haystack: &str, word: &str) -> Option<usize> {
    let bytes = haystack.as_bytes();
    let mut from = 0;
    while let Some(p) = haystack[from..].find(word) {
        let at = from + p;
        let before = at == 0 || !is_ident(bytes[at - 1] as char);
        let after = bytes
            .get(at + word.len())
            .is_none_or(|b| !is_ident(*b as char));
        if before && after {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn split_top_level(list: &str) -> Vec<String> {
    let mut items = vec![String::new()];
    let mut depth = 0;
    for c in list.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                items.push(String::new());
                continue;
            }
            ';' => break,
            _ => {}
        }
        items.last_mut().unwrap().push(c);
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_numbers() {
        let s = compile("UPDATE t SET a = a - $qty WHERE id = $product AND b = $qty");
        assert_eq!(s.text, "UPDATE t SET a = a - $1 WHERE id = $2 AND b = $1");
        assert_eq!(s.params, ["qty", "product"]);
    }

    #[test]
    fn literals_comments_and_dollar_quotes_are_left_alone() {
        let s =
            compile("SELECT '$no', \"$col\", $$ $x $$, $f$ $y $f$ -- $c\n, $yes /* $d */ ::int");
        assert_eq!(s.params, ["yes"]);
        assert!(
            s.text.contains("'$no'") && s.text.contains("$$ $x $$") && s.text.contains("-- $c")
        );
        assert!(s.text.contains("$1 /* $d */"));
    }

    #[test]
    fn positional_placeholders_stay() {
        assert_eq!(compile("SELECT $1").params, Vec::<String>::new());
    }

    #[test]
    fn output_names_of_returning_and_select() {
        assert_eq!(
            output_names("INSERT INTO orders (c) VALUES ($c) RETURNING id AS order_id, created"),
            ["order_id", "created"]
        );
        assert_eq!(
            output_names("SELECT abalance FROM a WHERE aid = $aid"),
            ["abalance"]
        );
        assert_eq!(
            output_names("SELECT count(*) AS n, max(x) m FROM t"),
            ["n", "m"]
        );
        assert!(output_names("UPDATE t SET a = 1").is_empty());
    }
}
