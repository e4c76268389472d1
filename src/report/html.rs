//! report.html: report.md as one self-contained page (DESIGN section 8). The same sections,
//! the charts inlined as PNG data URLs, the style in the page: nothing is fetched, so it opens
//! from a mail attachment or an archive as it does beside its files, and prints.

use anyhow::{Context, Result};
use base64::Engine as _;
use pulldown_cmark::{html, CowStr, Event, Options, Parser, Tag};
use std::path::Path;

const STYLE: &str = r#"
:root { color-scheme: light; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d1d1f;
       max-width: 1180px; margin: 2rem auto; padding: 0 1.5rem; }
h1 { font-size: 1.7rem; border-bottom: 2px solid #1f77b4; padding-bottom: .3rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
h3 { font-size: 1.1rem; margin-top: 1.6rem; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .88rem; display: block; overflow-x: auto; }
th, td { border: 1px solid #d0d0d0; padding: .25rem .55rem; }
th { background: #f3f5f8; text-align: left; }
td { font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; height: auto; border: 1px solid #e3e3e3; }
code { background: #f3f3f3; padding: 0 .25rem; border-radius: 3px; }
strong { color: #a01818; }
@media print {
  body { max-width: none; margin: 0; font-size: 11pt; }
  h2 { break-after: avoid; }
  img, table { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Write `report.html` into `dir` from the markdown of its report.md; images that name files
/// in `dir` are inlined (one that cannot be read is left as its alt text).
pub fn write_html(dir: &Path, md: &str, title: &str) -> Result<()> {
    let body = to_html(dir, md);
    let page = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    );
    super::write_atomic(&dir.join("report.html"), page.as_bytes())
        .with_context(|| format!("cannot write {}", dir.join("report.html").display()))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn to_html(dir: &Path, md: &str) -> String {
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    let events = Parser::new_ext(md, options).map(|e| match e {
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => Event::Start(Tag::Image {
            link_type,
            dest_url: inline_image(dir, &dest_url).unwrap_or(dest_url),
            title,
            id,
        }),
        // Links to a sibling's report.md go to its report.html.
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) if dest_url.ends_with("report.md") && !dest_url.contains("://") => {
            let html = format!("{}.html", dest_url.trim_end_matches(".md"));
            Event::Start(Tag::Link {
                link_type,
                dest_url: CowStr::from(html),
                title,
                id,
            })
        }
        other => other,
    });
    let mut out = String::with_capacity(md.len() * 2);
    html::push_html(&mut out, events);
    out
}

/// A relative image path under `dir` as a data URL.
fn inline_image<'a>(dir: &Path, url: &str) -> Option<CowStr<'a>> {
    if url.contains("://") || url.starts_with('/') || url.contains("..") {
        return None;
    }
    let path = dir.join(url);
    let mime = match path.extension()?.to_str()? {
        "png" => "image/png",
        "svg" => "image/svg+xml",
        _ => return None,
    };
    let bytes = std::fs::read(&path).ok()?;
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    Some(CowStr::from(format!("data:{mime};base64,{b64}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn images_are_inlined_and_tables_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("charts")).unwrap();
        std::fs::write(dir.path().join("charts/a.png"), b"\x89PNG-bytes").unwrap();
        let md = "# T\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n![chart](charts/a.png)\n\n![gone](charts/none.png)\n\n[run](../x/report.md)\n";
        let html = super::to_html(dir.path(), md);
        assert!(
            html.contains("<table>") && html.contains("<td>2</td>"),
            "{html}"
        );
        assert!(
            html.contains("src=\"data:image/png;base64,iVBORy1ieXRlcw==\""),
            "{html}"
        );
        assert!(html.contains("src=\"charts/none.png\""), "{html}");
        assert!(html.contains("href=\"../x/report.html\""), "{html}");
    }
}
