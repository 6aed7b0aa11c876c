//! Page layout and small shared pieces (maud).

use maud::{DOCTYPE, Markup, html};

/// Where the stylesheet and the script are served ([`crate::app`]): files
/// of their own, not inline, so the Content-Security-Policy can refuse
/// every inline style and script ([`CONTENT_SECURITY_POLICY`]).
pub const CSS_PATH: &str = "/assets/admin.css";
/// See [`CSS_PATH`].
pub const JS_PATH: &str = "/assets/admin.js";

/// The policy of every response: only this origin's stylesheet, script
/// and images; no inline script or style (so injected markup cannot run or
/// restyle anything), no plugins, no framing, no `<base>`. `form-action`
/// is left open on purpose: the Authorize button's POST redirects to the
/// OAuth provider's site, which Chromium checks against `form-action`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/// The one script of the admin pages: a form with `data-confirm` asks
/// before it is sent (what an inline `onsubmit` did before the CSP).
pub const JS: &str = r#"document.addEventListener("submit", function (e) {
  var ask = e.target.getAttribute("data-confirm");
  if (ask && !window.confirm(ask)) { e.preventDefault(); }
});
"#;

/// The stylesheet of the admin pages.
pub const CSS: &str = r#"
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f6f9;color:#1d2430;font-size:15px}
header{background:#1f2a3c;color:#fff;padding:0 24px;display:flex;align-items:center;gap:24px;height:52px}
header .brand{font-weight:700;letter-spacing:.5px}
header nav a{color:#c9d3e3;text-decoration:none;margin-right:16px}
header nav a.active,header nav a:hover{color:#fff}
header form{margin-left:auto}
main{max-width:1150px;margin:24px auto;padding:0 24px}
h1{font-size:22px;margin:0 0 16px}
h2{font-size:17px;margin:24px 0 10px}
.card{background:#fff;border:1px solid #dde3ea;border-radius:8px;padding:18px 20px;margin-bottom:18px}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:8px 10px;border-bottom:1px solid #e6eaf0;vertical-align:top}
th{font-size:12px;text-transform:uppercase;color:#5b6778;letter-spacing:.4px}
td.num{text-align:right;font-variant-numeric:tabular-nums}
a{color:#2358c4}
.badge{display:inline-block;padding:2px 9px;border-radius:10px;font-size:12px;font-weight:600}
.st-ok{background:#dcf5e3;color:#146c2e}.st-degraded{background:#fff1cc;color:#8a5a00}
.st-offline{background:#fde0e0;color:#a31616}.st-disabled,.st-unchecked{background:#e7eaef;color:#4b5565}
.muted{color:#6b7686;font-size:13px}
.reason{color:#a31616;font-size:13px;max-width:420px;word-break:break-word}
button,.btn{background:#2358c4;color:#fff;border:0;border-radius:6px;padding:7px 14px;font-size:14px;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.btn.secondary{background:#e7eaef;color:#1d2430}
button.danger{background:#c62828}
.small{padding:4px 10px;font-size:13px}
form.inline{display:inline}
.field{margin-bottom:14px}
.field label{display:block;font-weight:600;margin-bottom:4px}
.field label.check{font-weight:500}
.field input[type=text],.field input[type=password],.field select,.field textarea{width:100%;max-width:560px;padding:7px 9px;border:1px solid #c4ccd7;border-radius:6px;font-size:14px;font-family:inherit}
.field.has-error input,.field.has-error textarea,.field.has-error select{border-color:#c62828}
.help{margin:4px 0 0;color:#6b7686;font-size:13px}
.error{color:#c62828;font-size:13px;margin:4px 0 0}
.req{color:#c62828}
.tag{background:#eef1f6;color:#4b5565;border-radius:4px;font-size:11px;padding:1px 6px;margin-left:6px;font-weight:500}
.flash{padding:10px 14px;border-radius:6px;margin-bottom:16px}
.flash.ok{background:#dcf5e3;color:#146c2e}.flash.bad{background:#fde0e0;color:#a31616}
.actions{display:flex;gap:8px;flex-wrap:wrap;align-items:center}
dl.kv{display:grid;grid-template-columns:180px 1fr;gap:6px 12px;margin:0}
dl.kv dt{color:#5b6778}dl.kv dd{margin:0;word-break:break-all}
.login{max-width:360px;margin:80px auto}
code{background:#eef1f6;padding:1px 5px;border-radius:4px;font-size:13px}
.actions.title{justify-content:space-between;margin-bottom:14px}
.actions.title h1{margin:0}
.actions.spaced{margin-bottom:14px}
dl.kv.spaced{margin-bottom:12px}
"#;

/// The navigation: (link, the `active` key of its pages, text).
const NAV: [(&str, &str, &str); 3] = [
    ("/modules", "modules", "Modules"),
    ("/policies", "policies", "Camera policies"),
    ("/recordings", "recordings", "Recordings"),
];

/// The page shell. `csrf` is the session's token (for the logout form);
/// empty on the login page.
pub fn page(title: &str, active: &str, csrf: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · CSAL" }
                link rel="stylesheet" href=(CSS_PATH);
                script src=(JS_PATH) defer {}
            }
            body {
                header {
                    span class="brand" { "CSAL Module Manager" }
                    @if !csrf.is_empty() {
                        nav aria-label="Main" {
                            @for (href, key, text) in NAV {
                                a href=(href) class=[(active == key).then_some("active")]
                                    aria-current=[(active == key).then_some("page")] { (text) }
                            }
                        }
                        form class="inline" method="post" action="/logout" {
                            (csrf_input(csrf))
                            button class="secondary small" type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_input(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// A status badge.
pub fn badge(status: &str) -> Markup {
    html! { span class={ "badge st-" (status) } data-status=(status) { (status) } }
}

/// A one-button POST form.
pub fn post_button(action: &str, csrf: &str, label: &str, class: &str) -> Markup {
    html! {
        form class="inline" method="post" action=(action) {
            (csrf_input(csrf))
            button type="submit" class=(class) { (label) }
        }
    }
}

/// `12.3 ms`.
pub fn ms(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
        None => "–".into(),
    }
}

/// `1.5 MiB`.
pub fn bytes(n: u64) -> String {
    csal_core::human_bytes(n)
}

/// "12.0 GiB stored by CSAL, 4.0 GiB/day, 30.0 GiB free: 7.5 days" from a
/// health report the capacity forecast amended (None before it ran).
pub fn capacity_line(health: &csal_core::HealthReport) -> Option<String> {
    let detail = |key: &str| health.details.get(key).and_then(serde_json::Value::as_u64);
    let stored = detail("stored_bytes")?;
    let mut line = format!("{} stored by CSAL, {}/day", bytes(stored), bytes(detail("bytes_per_day").unwrap_or(0)));
    if let Some(free) = health.free_bytes() {
        line.push_str(&format!(", {} free", bytes(free)));
    }
    if let Some(days) = health.details.get("days_left").and_then(serde_json::Value::as_f64) {
        line.push_str(&format!(": full in {days:.1} days at this rate"));
    }
    Some(line)
}

/// A health detail for people: byte counts (`*_bytes`, quotas) in binary
/// units, anything else as it came.
pub fn detail_value(key: &str, value: &serde_json::Value) -> String {
    match value.as_u64() {
        Some(n) if key.ends_with("bytes") || key.ends_with("quota") || key == "quota" => bytes(n),
        _ => value.as_str().map_or_else(|| value.to_string(), str::to_owned),
    }
}

/// Percent-encode a path segment (module names are simple, but be safe).
pub fn seg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
