//! The shape of a stored message, as IMAP numbers it.
//!
//! A message is a header and a body (RFC 5322). With MIME (RFC 2045,
//! RFC 2046) the body can itself be made of parts — a `multipart/mixed`
//! body holds the text and each attachment, separated by a *boundary*
//! line — and a part of type `message/rfc822` holds a whole forwarded
//! message. IMAP lets a client fetch just one part (`BODY[2]`, RFC 3501
//! §6.4.5), so a phone can show the text of a message without
//! downloading its 5 MB attachment. This module finds the byte ranges of
//! those parts in the raw message; `response.rs` describes them
//! (BODYSTRUCTURE) and the session hands out their bytes.
//!
//! Stored messages are hostile input too (anyone can APPEND anything), so
//! nesting depth and the number of parts are bounded.

use std::ops::Range;

use mail_parser::{MessageParser, MimeHeaders};

use super::parser::{Section, SectionText};

/// Deeper nesting is treated as an opaque leaf.
const MAX_DEPTH: usize = 16;
/// At most this many parts are looked at in one message.
const MAX_PARTS: usize = 500;

/// One entity of a message: the message itself, one of its parts, or a
/// message inside a `message/rfc822` part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// The header, including the blank line that ends it.
    pub header: Range<usize>,
    pub body: Range<usize>,
    /// Lower-case MIME type and subtype, e.g. ("text", "plain").
    pub mime_type: (String, String),
    /// Content-Type parameters (charset, boundary, name...).
    pub params: Vec<(String, String)>,
    pub kind: PartKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartKind {
    /// A single piece of content (text, an image...).
    Single,
    Multipart(Vec<Part>),
    /// `message/rfc822`: the body is a whole message of its own.
    Message(Box<Part>),
}

/// Finds the structure of `raw`.
pub fn structure(raw: &[u8]) -> Part {
    let mut budget = MAX_PARTS;
    entity(raw, 0..raw.len(), ("text", "plain"), 0, &mut budget)
}

fn entity(raw: &[u8], range: Range<usize>, default: (&str, &str), depth: usize, budget: &mut usize) -> Part {
    *budget = budget.saturating_sub(1);
    let (header, body) = split_header(raw, range);
    let (mime_type, params) = content_type(&raw[header.clone()]).unwrap_or_else(|| ((default.0.to_string(), default.1.to_string()), Vec::new()));
    let deeper = depth < MAX_DEPTH && *budget > 0;
    let boundary = params.iter().find(|(k, _)| k == "boundary").map(|(_, v)| v.clone());
    let kind = match (mime_type.0.as_str(), mime_type.1.as_str(), boundary) {
        ("multipart", _, Some(boundary)) if deeper && !boundary.is_empty() => {
            // RFC 2046 §5.1.5: in a digest, parts are messages by default.
            let child_default = if mime_type.1 == "digest" { ("message", "rfc822") } else { ("text", "plain") };
            let mut children = Vec::new();
            for range in split_multipart(raw, body.clone(), boundary.as_bytes()) {
                if *budget == 0 {
                    break;
                }
                children.push(entity(raw, range, child_default, depth + 1, budget));
            }
            PartKind::Multipart(children)
        }
        ("message", "rfc822", _) if deeper => PartKind::Message(Box::new(entity(raw, body.clone(), ("text", "plain"), depth + 1, budget))),
        _ => PartKind::Single,
    };
    Part { header, body, mime_type, params, kind }
}

/// Splits an entity at the blank line after its header. Without one, it
/// is all header and the body is empty.
fn split_header(raw: &[u8], range: Range<usize>) -> (Range<usize>, Range<usize>) {
    let bytes = &raw[range.clone()];
    if bytes.starts_with(b"\r\n") {
        return (range.start..range.start + 2, range.start + 2..range.end);
    }
    if bytes.starts_with(b"\n") {
        return (range.start..range.start + 1, range.start + 1..range.end);
    }
    let crlf = find(bytes, b"\r\n\r\n").map(|i| i + 4);
    let lf = find(bytes, b"\n\n").map(|i| i + 2);
    let end = match (crlf, lf) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b).unwrap_or(bytes.len()),
    };
    (range.start..range.start + end, range.start + end..range.end)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The parts between `--boundary` lines (RFC 2046 §5.1.1). The line break
/// before a boundary line belongs to the boundary, not to the part.
fn split_multipart(raw: &[u8], body: Range<usize>, boundary: &[u8]) -> Vec<Range<usize>> {
    let mut delimiter = b"--".to_vec();
    delimiter.extend_from_slice(boundary);
    let mut parts = Vec::new();
    let mut part_start: Option<usize> = None;
    let mut line_start = body.start;
    while line_start < body.end {
        let line_end = raw[line_start..body.end].iter().position(|&b| b == b'\n').map(|i| line_start + i + 1).unwrap_or(body.end);
        let line = &raw[line_start..line_end];
        if line.starts_with(&delimiter) {
            let closing = line[delimiter.len()..].starts_with(b"--");
            if let Some(start) = part_start {
                let mut end = line_start;
                if end > start && raw[end - 1] == b'\n' {
                    end -= 1;
                    if end > start && raw[end - 1] == b'\r' {
                        end -= 1;
                    }
                }
                parts.push(start..end.max(start));
            }
            if closing {
                return parts;
            }
            part_start = Some(line_end);
        }
        line_start = line_end;
    }
    if let Some(start) = part_start {
        parts.push(start..body.end); // no closing boundary: the part runs to the end
    }
    parts
}

/// A lower-case MIME type and subtype, and the Content-Type parameters.
type ContentType = ((String, String), Vec<(String, String)>);

/// The Content-Type of a header block, lower-cased, with its parameters.
fn content_type(header: &[u8]) -> Option<ContentType> {
    let parsed = MessageParser::new().parse_headers(header)?;
    let ct = parsed.content_type()?;
    let subtype = ct.subtype().unwrap_or(if ct.ctype().eq_ignore_ascii_case("text") { "plain" } else { "octet-stream" });
    let params = ct.attributes().unwrap_or_default().iter().map(|a| (a.name.to_ascii_lowercase(), a.value.to_string())).collect();
    Some(((ct.ctype().to_ascii_lowercase(), subtype.to_ascii_lowercase()), params))
}

/// The unfolded value of the first header field called `name`.
pub fn header_value(header: &[u8], name: &str) -> Option<String> {
    fields(header).find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, field)| {
        let value = &field[field.iter().position(|&b| b == b':').map(|i| i + 1).unwrap_or(field.len())..];
        let text = String::from_utf8_lossy(value);
        text.replace("\r\n", "").replace('\n', "").trim().to_string()
    })
}

/// The fields of a header block: (name, the whole field with its line
/// breaks). A field goes on over lines that start with a space or tab.
pub fn fields(header: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut rest = header;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() || rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
                return None;
            }
            let mut end = 0;
            loop {
                end += rest[end..].iter().position(|&b| b == b'\n').map(|i| i + 1).unwrap_or(rest.len() - end);
                if end >= rest.len() || !matches!(rest[end], b' ' | b'\t') {
                    break;
                }
            }
            let (field, tail) = rest.split_at(end);
            rest = tail;
            if let Some(colon) = field.iter().position(|&b| b == b':') {
                return Some((field[..colon].trim_ascii(), field));
            }
            // A line without a colon is not a field: skip it.
        }
    })
}

/// The bytes `BODY[section]` asks for, or `None` if the message has no
/// such part.
pub fn section_bytes(raw: &[u8], root: &Part, section: &Section) -> Option<Vec<u8>> {
    let mut target = root;
    for (i, &n) in section.part.iter().enumerate() {
        target = child(target, n, i == 0)?;
    }
    // HEADER, TEXT and HEADER.FIELDS apply to a message: the whole message
    // at the top, or the one inside a message/rfc822 part.
    let message = || {
        if section.part.is_empty() {
            Some(root)
        } else if let PartKind::Message(inner) = &target.kind {
            Some(inner.as_ref())
        } else {
            None
        }
    };
    let bytes = match &section.text {
        None if section.part.is_empty() => raw[root.header.start..root.body.end].to_vec(),
        None => raw[target.body.clone()].to_vec(),
        Some(SectionText::Mime) => raw[target.header.clone()].to_vec(),
        Some(SectionText::Header) => raw[message()?.header.clone()].to_vec(),
        Some(SectionText::Text) => raw[message()?.body.clone()].to_vec(),
        Some(SectionText::HeaderFields { not, fields: names }) => {
            let header = &raw[message()?.header.clone()];
            let mut out = Vec::new();
            for (name, field) in fields(header) {
                let listed = names.iter().any(|n| n.as_bytes().eq_ignore_ascii_case(name));
                if listed != *not {
                    out.extend_from_slice(field);
                }
            }
            out.extend_from_slice(b"\r\n");
            out
        }
    };
    Some(bytes)
}

/// Part `n` inside `node` (RFC 3501 §6.4.5 numbering); `top` when `node`
/// is the whole message. The parts of a message (the whole one, or the
/// one inside a `message/rfc822` part) are those of its multipart body; a
/// message that is not multipart has one part, its body, numbered 1 (and
/// described by the message's own header). So when the body of a message
/// is itself a forwarded message, `1` is that whole forwarded message and
/// `1.1` its body. A part that is neither multipart nor a message has no
/// parts of its own.
fn child(node: &Part, n: u32, top: bool) -> Option<&Part> {
    let message = match &node.kind {
        _ if top => node,
        PartKind::Message(inner) => inner.as_ref(),
        PartKind::Multipart(children) => return children.get(n.checked_sub(1)? as usize),
        PartKind::Single => return None,
    };
    match &message.kind {
        PartKind::Multipart(children) => children.get(n.checked_sub(1)? as usize),
        _ => (n == 1).then_some(message),
    }
}

/// How many lines `bytes` has (for the BODYSTRUCTURE of text parts).
pub fn line_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// The Content-Disposition of a part: ("attachment", params).
pub fn disposition(header: &[u8]) -> Option<(String, Vec<(String, String)>)> {
    let parsed = MessageParser::new().parse_headers(header)?;
    let d = parsed.content_disposition()?;
    let params = d.attributes().unwrap_or_default().iter().map(|a| (a.name.to_ascii_lowercase(), a.value.to_string())).collect();
    Some((d.ctype().to_ascii_lowercase(), params))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIXED: &[u8] = b"From: a@b.test\r\nSubject: Photos\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n\
preamble\r\n--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello\r\nBob\r\n--XX\r\n\
Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\ninner body\r\n--XX\r\n\
Content-Type: image/png\r\nContent-Disposition: attachment; filename=\"p.png\"\r\n\r\nPNGDATA\r\n--XX--\r\nepilogue\r\n";

    fn bytes(section: &Section) -> Option<String> {
        section_bytes(MIXED, &structure(MIXED), section).map(|b| String::from_utf8(b).unwrap())
    }

    fn sec(part: &[u32], text: Option<SectionText>) -> Section {
        Section { part: part.to_vec(), text }
    }

    #[test]
    fn parts_are_found_and_numbered() {
        let root = structure(MIXED);
        assert_eq!(root.mime_type, ("multipart".into(), "mixed".into()));
        let PartKind::Multipart(children) = &root.kind else { panic!("{root:?}") };
        assert_eq!(children.len(), 3);
        assert_eq!(children[0].params, vec![("charset".to_string(), "utf-8".to_string())]);
        assert!(matches!(children[1].kind, PartKind::Message(_)));
        assert_eq!(bytes(&sec(&[1], None)).unwrap(), "Hello\r\nBob");
        assert_eq!(bytes(&sec(&[3], None)).unwrap(), "PNGDATA");
        assert_eq!(bytes(&sec(&[2], Some(SectionText::Header))).unwrap(), "Subject: inner\r\n\r\n");
        assert_eq!(bytes(&sec(&[2, 1], None)).unwrap(), "inner body");
        assert_eq!(
            bytes(&sec(&[3], Some(SectionText::Mime))).unwrap(),
            "Content-Type: image/png\r\nContent-Disposition: attachment; filename=\"p.png\"\r\n\r\n"
        );
        assert_eq!(bytes(&sec(&[4], None)), None);
        assert_eq!(bytes(&sec(&[1], Some(SectionText::Header))), None);
        let fields = SectionText::HeaderFields { not: false, fields: vec!["subject".into(), "X-None".into()] };
        assert_eq!(bytes(&sec(&[], Some(fields))).unwrap(), "Subject: Photos\r\n\r\n");
        assert_eq!(disposition(&MIXED[children[2].header.clone()]), Some(("attachment".into(), vec![("filename".into(), "p.png".into())])));
    }

    #[test]
    fn simple_and_broken_messages() {
        let simple = b"Subject: hi\r\n folded\r\n\r\nline 1\r\nline 2\r\n";
        let root = structure(simple);
        assert_eq!(root.kind, PartKind::Single);
        assert_eq!(root.mime_type.0, "text");
        assert_eq!(section_bytes(simple, &root, &sec(&[1], None)).unwrap(), b"line 1\r\nline 2\r\n");
        assert_eq!(header_value(&simple[root.header.clone()], "SUBJECT").as_deref(), Some("hi folded"));
        for raw in [&b""[..], b"no header end", b"\r\n\r\n", b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n--b\r\n--b", b"\xff\xfe:\r\n\r\n"] {
            let root = structure(raw);
            let _ = section_bytes(raw, &root, &sec(&[1, 1, 1], Some(SectionText::Text)));
        }
        // Deep nesting stops at MAX_DEPTH instead of recursing without end.
        let mut deep = Vec::new();
        for _ in 0..1000 {
            deep.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        }
        let _ = structure(&deep);
    }

    #[test]
    fn a_message_whose_body_is_a_message() {
        // Not multipart: part 1 is the body, i.e. the whole forwarded
        // message; 1.1 is that message's body, 1.HEADER its header.
        let raw = b"From: a@b.test\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@d.test\r\nSubject: inner\r\n\r\nHello\r\n";
        let root = structure(raw);
        let get = |part: &[u32], text| section_bytes(raw, &root, &sec(part, text)).map(|b| String::from_utf8(b).unwrap());
        assert_eq!(get(&[1], None).unwrap(), "From: c@d.test\r\nSubject: inner\r\n\r\nHello\r\n");
        assert_eq!(get(&[1, 1], None).unwrap(), "Hello\r\n");
        assert_eq!(get(&[1], Some(SectionText::Header)).unwrap(), "From: c@d.test\r\nSubject: inner\r\n\r\n");
        assert_eq!(get(&[1], Some(SectionText::Text)).unwrap(), "Hello\r\n");
        assert_eq!(get(&[], Some(SectionText::Text)).unwrap(), "From: c@d.test\r\nSubject: inner\r\n\r\nHello\r\n");
        assert_eq!(get(&[2], None), None);
        // A part that is neither multipart nor a message has no parts.
        assert_eq!(get(&[1, 1, 1], None), None);
    }
}
