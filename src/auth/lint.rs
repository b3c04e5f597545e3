//! `mailflow check` warnings for the sender-authentication records a
//! scenario publishes: an SPF, DKIM or DMARC TXT record that a receiver
//! could not use. They are warnings, not errors: a lesson may publish a
//! broken record on purpose (to show `permerror`).
//!
//! - SPF (RFC 7208 §4.6): every term must be a known mechanism or a
//!   `name=value` modifier, and at most 10 terms may make DNS queries
//!   (`include`, `a`, `mx`, `ptr`, `exists`, `redirect`; §4.6.4), or the
//!   receiver stops with `permerror`.
//! - DKIM key records (RFC 6376 §3.6.1): `p=` must hold a key of a known
//!   type (`k=rsa` or `k=ed25519`).
//! - DMARC records (RFC 7489 §6.3): start with `v=DMARC1` and carry `p=`.

use mail_auth::common::parse::TxtRecordParser;
use mail_auth::common::verify::DomainKey;
use mail_auth::dmarc::Dmarc;
use mail_auth::spf::Spf;

use crate::scenario::validate::owner_name;
use crate::scenario::{FieldPath, RecordKind, RecordSpec, Scenario};

/// Every warning, with the field it is about (`...records[i].text`).
pub fn scenario(s: &Scenario) -> Vec<(FieldPath, String)> {
    let mut out = Vec::new();
    let root = FieldPath::root();
    for (domain, zone) in &s.domains {
        for (i, record) in zone.records.iter().enumerate() {
            check(domain, record, root.key("domains").key(domain).key("records").index(i).key("text"), &mut out);
        }
    }
    for (i, step) in s.steps.iter().enumerate() {
        if let Some(dns) = &step.dns {
            for (j, record) in dns.records.iter().enumerate() {
                check(&dns.domain, record, root.key("steps").index(i).key("dns").key("records").index(j).key("text"), &mut out);
            }
        }
    }
    out
}

fn check(domain: &str, record: &RecordSpec, path: FieldPath, out: &mut Vec<(FieldPath, String)>) {
    let (RecordKind::TXT, Some(text)) = (record.kind, record.text.as_deref()) else { return };
    let owner = owner_name(domain, record.name.as_deref());
    let lower = text.trim_start().to_ascii_lowercase();
    let problems = if lower.starts_with("v=spf1") && (lower.len() == 6 || lower.as_bytes()[6] == b' ') {
        spf_problems(text).into_iter().map(|p| format!("SPF record of {owner}: {p}")).collect()
    } else if owner.starts_with("_dmarc.") || lower.starts_with("v=dmarc1") {
        dmarc_problem(text).map(|p| format!("DMARC record {owner}: {p}")).into_iter().collect()
    } else if owner.contains("._domainkey.") || lower.starts_with("v=dkim1") {
        dkim_problem(text).map(|p| format!("DKIM key record {owner}: {p}")).into_iter().collect()
    } else {
        Vec::new()
    };
    out.extend(problems.into_iter().map(|p| (path.clone(), p)));
}

/// What a receiver would stumble on in an SPF record.
pub fn spf_problems(text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let mut lookups = 0;
    for term in text.split_ascii_whitespace().skip(1) {
        let lower = term.to_ascii_lowercase();
        let bare = lower.trim_start_matches(['+', '-', '~', '?']);
        let name = bare.split([':', '/', '=']).next().unwrap_or("");
        // `name=value` (RFC 7208 §4.6.1); unknown modifiers are allowed.
        let is_modifier = bare.split_once('=').is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)));
        match name {
            "include" | "exists" if bare.len() > name.len() + 1 && bare.as_bytes()[name.len()] == b':' => lookups += 1,
            "a" | "mx" | "ptr" if matches!(bare.as_bytes().get(name.len()), None | Some(b':') | Some(b'/')) => lookups += 1,
            "all" if bare == "all" => {}
            "ip4" | "ip6" if bare.len() > 4 && bare.as_bytes()[3] == b':' => {}
            "redirect" if is_modifier => lookups += 1,
            "exp" if is_modifier => {}
            _ if is_modifier => {}
            _ => problems.push(format!("{term:?} is not an SPF mechanism (all, include, a, mx, ptr, ip4, ip6, exists) or a modifier (redirect=, exp=)")),
        }
    }
    if lookups > 10 {
        problems.push(format!(
            "{lookups} terms make DNS lookups (include, a, mx, ptr, exists, redirect); receivers stop after 10 and answer permerror (RFC 7208 §4.6.4)"
        ));
    }
    if problems.is_empty()
        && let Err(err) = Spf::parse(text.as_bytes())
    {
        problems.push(format!("it does not parse ({err}); receivers answer permerror"));
    }
    problems
}

/// Why a DMARC record would be ignored, if it would.
pub fn dmarc_problem(text: &str) -> Option<String> {
    if !text.trim_start().starts_with("v=DMARC1") {
        return Some("it must start with \"v=DMARC1\" (RFC 7489 §6.4), so receivers ignore it".into());
    }
    let has_p = text.split(';').any(|tag| tag.trim().split_once('=').is_some_and(|(name, _)| name.trim() == "p"));
    match Dmarc::parse(text.as_bytes()) {
        Err(err) => Some(format!("it does not parse ({err}), so receivers ignore it")),
        Ok(_) if !has_p => Some("it has no policy tag \"p=\" (none, quarantine or reject), so receivers ignore it (RFC 7489 §6.3)".into()),
        Ok(_) => None,
    }
}

/// Why a DKIM key record would not verify anything, if it would not.
pub fn dkim_problem(text: &str) -> Option<String> {
    match DomainKey::parse(text.as_bytes()) {
        Err(err) => Some(format!("it does not parse ({err}), so every signature with this selector fails")),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spf_records() {
        assert!(spf_problems("v=spf1 mx -all").is_empty());
        assert!(spf_problems("v=spf1 ip4:127.77.0.0/16 a:mx1.example.org include:other.test ~all").is_empty());
        assert!(spf_problems("v=spf1 redirect=other.test").is_empty());
        let typo = spf_problems("v=spf1 mx -al");
        assert!(typo.len() == 1 && typo[0].contains("\"-al\""), "{typo:?}");
        let many = (0..11).map(|i| format!("include:d{i}.test")).collect::<Vec<_>>().join(" ");
        let many = spf_problems(&format!("v=spf1 {many} -all"));
        assert!(many.iter().any(|p| p.contains("11 terms")), "{many:?}");
        let ten = (0..10).map(|i| format!("a:d{i}.test")).collect::<Vec<_>>().join(" ");
        assert!(spf_problems(&format!("v=spf1 {ten} -all")).is_empty());
    }

    #[test]
    fn warnings_name_file_line_and_column() {
        let text = r#"{
  "title": "broken records",
  "domains": {
    "school.test": { "records": [
      { "type": "TXT", "text": "v=spf1 mx -al" },
      { "type": "TXT", "name": "_dmarc", "text": "v=DMARC1; pct=100" },
      { "type": "TXT", "name": "mailflow._domainkey", "text": "v=DKIM1; k=dsa; p=AAAA" },
      { "type": "TXT", "text": "just a note" }
    ] }
  },
  "hosts": { "smtp.school.test": { "services": ["smtp"], "domains": ["school.test"] } }
}"#;
        let scenario = Scenario::parse("broken.json", text).expect("warnings do not stop a scenario from loading");
        let warnings: Vec<String> = scenario.warnings("broken.json", text).iter().map(ToString::to_string).collect();
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(
            warnings[0].starts_with("broken.json:5:32: domains[\"school.test\"].records[0].text: warning: SPF record of school.test: \"-al\""),
            "{warnings:#?}"
        );
        assert!(warnings[1].starts_with("broken.json:6:50: ") && warnings[1].contains("DMARC record _dmarc.school.test"), "{warnings:#?}");
        assert!(warnings[2].starts_with("broken.json:7:63: ") && warnings[2].contains("DKIM key record mailflow._domainkey.school.test"), "{warnings:#?}");
    }

    #[test]
    fn dmarc_and_dkim_records() {
        assert_eq!(dmarc_problem("v=DMARC1; p=reject"), None);
        assert!(dmarc_problem("v=DMARC1; rua=mailto:x@school.test").is_some());
        assert!(dmarc_problem("v=DMARC2; p=reject").is_some());
        assert_eq!(dkim_problem("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="), None);
        assert!(dkim_problem("v=DKIM1; k=dsa; p=AAAA").is_some());
    }
}
