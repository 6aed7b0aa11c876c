//! Module forms generated from a provider's config spec, and the way back
//! from posted form fields to a config JSON object.
//!
//! Secret fields are write-only: they render as empty password inputs (or
//! an empty textarea for multi-line secrets) and are never filled from the
//! stored config. On edit an empty secret is left out of the config, which
//! the catalog reads as "keep the stored value".

use std::collections::BTreeMap;

use csal_core::{ConfigField, FieldKind, ProviderRegistration, StorageError};
use maud::{Markup, html};

/// Prefix of provider config fields in forms (keeps them apart from `name`,
/// `label`, `csrf`, ...).
pub const CFG_PREFIX: &str = "cfg.";

/// What the user typed (secrets excluded when rendering back) and the errors.
#[derive(Debug, Default, Clone)]
pub struct FormState {
    /// The new module's name (add form only).
    pub name: String,
    /// Its label.
    pub label: String,
    /// Whether it is created enabled.
    pub enabled: bool,
    /// Non-secret field values as text, by key.
    pub values: BTreeMap<String, String>,
    /// Error per field key (`name` and `label` included).
    pub errors: BTreeMap<String, String>,
    /// Error that names no field.
    pub general_error: Option<String>,
}

impl FormState {
    /// Defaults of a new module of this provider.
    pub fn defaults(reg: &ProviderRegistration) -> Self {
        let mut values = BTreeMap::new();
        for f in reg.fields {
            if let Some(d) = f.default {
                values.insert(f.key.to_owned(), default_text(d));
            }
        }
        FormState { enabled: true, values, ..Default::default() }
    }

    /// Current values of a stored module (config already masked; secrets
    /// are skipped anyway).
    pub fn from_config(reg: &ProviderRegistration, config: &serde_json::Value) -> Self {
        let mut state = FormState::defaults(reg);
        if let Some(map) = config.as_object() {
            for f in reg.fields.iter().filter(|f| !f.kind.is_secret()) {
                if let Some(v) = map.get(f.key) {
                    let text = match v {
                        serde_json::Value::String(s) => s.clone(),
                        serde_json::Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    state.values.insert(f.key.to_owned(), text);
                }
            }
        }
        state
    }

    /// Attach a config error to the field it names, else as a general error.
    pub fn set_error(&mut self, reg: &ProviderRegistration, err: &StorageError) {
        let message = err.message().to_owned();
        match field_named_in(reg, &message) {
            Some(key) => {
                self.errors.insert(key.to_owned(), message);
            }
            None => self.general_error = Some(err.to_string()),
        }
    }

    /// Whether any field or the form as a whole has an error.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty() || self.general_error.is_some()
    }
}

/// Default JSON text shown as form text (`"\"x\""` -> `x`).
fn default_text(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => json.to_owned(),
    }
}

/// The spec field whose key appears quoted (`'key'`) in an error message.
pub fn field_named_in<'a>(reg: &'a ProviderRegistration, message: &str) -> Option<&'a str> {
    reg.fields.iter().map(|f| f.key).find(|k| message.contains(&format!("'{k}'")))
}

/// Build the config JSON from posted fields. `editing`: empty secrets are
/// left out (keep stored). Type errors are recorded in `state.errors`.
pub fn config_from_form(
    reg: &ProviderRegistration,
    fields: &[(String, String)],
    state: &mut FormState,
) -> serde_json::Value {
    let mut config = serde_json::Map::new();
    let get = |key: &str| -> Option<&str> {
        let name = format!("{CFG_PREFIX}{key}");
        fields.iter().rev().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    };
    for f in reg.fields {
        let raw = get(f.key);
        if !f.kind.is_secret() && f.kind != FieldKind::Bool {
            state.values.insert(f.key.to_owned(), raw.unwrap_or("").to_owned());
        }
        let value = match f.kind {
            FieldKind::Bool => {
                let on = raw.is_some_and(|v| v == "true" || v == "on");
                state.values.insert(f.key.to_owned(), on.to_string());
                Some(serde_json::Value::Bool(on))
            }
            FieldKind::Number => match raw.map(str::trim).filter(|s| !s.is_empty()) {
                None => None,
                Some(text) => match parse_number(text) {
                    Some(n) => Some(n),
                    None => {
                        state.errors.insert(f.key.to_owned(), format!("field '{}' must be a number", f.key));
                        None
                    }
                },
            },
            FieldKind::SecretMultiline => raw.filter(|s| !s.trim().is_empty()).map(|s| s.replace("\r\n", "\n").into()),
            FieldKind::Secret => raw.filter(|s| !s.is_empty()).map(|s| s.to_owned().into()),
            _ => raw.map(str::trim).filter(|s| !s.is_empty()).map(|s| s.to_owned().into()),
        };
        if let Some(v) = value {
            config.insert(f.key.to_owned(), v);
        }
    }
    serde_json::Value::Object(config)
}

fn parse_number(text: &str) -> Option<serde_json::Value> {
    if let Ok(i) = text.parse::<i64>() {
        return Some(i.into());
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite()).and_then(serde_json::Number::from_f64).map(Into::into)
}

/// The inputs of one provider's fields.
pub fn render_fields(reg: &ProviderRegistration, state: &FormState, editing: bool) -> Markup {
    html! {
        @for f in reg.fields {
            (render_field(f, state, editing))
        }
    }
}

fn render_field(f: &ConfigField, state: &FormState, editing: bool) -> Markup {
    let name = format!("{CFG_PREFIX}{}", f.key);
    let id = format!("field-{}", f.key);
    let value = state.values.get(f.key).cloned().unwrap_or_default();
    let error = state.errors.get(f.key);
    // Screen readers announce the error with the field ([`error_id`]).
    let invalid = error.map(|_| "true");
    let described = error.map(|_| error_id(f.key));
    // A secret left empty while editing keeps the stored value.
    let required = f.required && !(editing && f.kind.is_secret());
    html! {
        div class={ "field" @if error.is_some() { " has-error" } } id={ "wrap-" (f.key) } {
            @if f.kind == FieldKind::Bool {
                label for=(id) class="check" {
                    input type="checkbox" id=(id) name=(name) value="true" checked[value == "true"]
                        aria-invalid=[invalid] aria-describedby=[described.as_deref()];
                    " " (f.label)
                }
            } @else {
                label for=(id) {
                    (f.label)
                    @if f.required { span class="req" title="required" { " *" } }
                    @if f.kind.is_secret() { span class="tag" { "secret" } }
                }
                @match f.kind {
                    FieldKind::Secret => {
                        input type="password" id=(id) name=(name) autocomplete="new-password" value=""
                            required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()]
                            placeholder=(if editing { "leave empty to keep the stored value" } else { "" });
                    }
                    FieldKind::SecretMultiline => {
                        textarea id=(id) name=(name) rows="5" autocomplete="off"
                            required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()]
                            placeholder=(if editing { "leave empty to keep the stored value" } else { "" }) {}
                    }
                    FieldKind::Select(options) => {
                        select id=(id) name=(name)
                            required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()] {
                            @if !f.required { option value="" selected[value.is_empty()] { "(default)" } }
                            @for o in options.iter() {
                                option value=(o) selected[value == *o] { (o) }
                            }
                        }
                    }
                    FieldKind::Number => {
                        input type="text" inputmode="decimal" id=(id) name=(name) value=(value)
                            required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()]
                            placeholder=(f.default.map(default_text).unwrap_or_default());
                    }
                    _ => {
                        input type="text" id=(id) name=(name) value=(value)
                            required[required] aria-invalid=[invalid] aria-describedby=[described.as_deref()]
                            placeholder=(f.default.map(default_text).unwrap_or_default());
                    }
                }
            }
            @if !f.help.is_empty() || f.doc_url.is_some() {
                p class="help" {
                    (f.help)
                    @if let Some(url) = f.doc_url { " " a href=(url) target="_blank" rel="noopener" { "docs" } }
                }
            }
            @if let Some(e) = error { p class="error field-error" id=(error_id(f.key)) { (e) } }
        }
    }
}

/// The id of the error text under the field `key` (its `aria-describedby`).
pub fn error_id(key: &str) -> String {
    format!("error-{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[ConfigField] = &[
        ConfigField::text("bucket", "Bucket").required(),
        ConfigField::number("part_mb", "Part size").default("8"),
        ConfigField::bool("tls", "TLS").default("true"),
        ConfigField::secret("key", "Key"),
    ];

    fn reg() -> ProviderRegistration {
        ProviderRegistration {
            provider_type: "t",
            display_name: "T",
            category: csal_core::ProviderCategory::ObjectStorage,
            crate_name: "t",
            description: "",
            fields: FIELDS,
            factory: |_, _| Err(StorageError::unsupported("test")),
        }
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn form_fields_become_typed_config_and_empty_secrets_are_left_out() {
        let mut st = FormState::default();
        let cfg =
            config_from_form(&reg(), &pairs(&[("cfg.bucket", " b "), ("cfg.part_mb", "16"), ("cfg.key", "")]), &mut st);
        assert_eq!(cfg, serde_json::json!({"bucket": "b", "part_mb": 16, "tls": false}));
        assert!(!st.has_errors());
    }

    #[test]
    fn a_non_number_is_a_field_error_and_secrets_are_never_rendered() {
        let mut st = FormState::default();
        config_from_form(&reg(), &pairs(&[("cfg.part_mb", "lots"), ("cfg.key", "hunter22")]), &mut st);
        assert!(st.errors["part_mb"].contains("'part_mb'"));
        let html = render_fields(&reg(), &st, false).into_string();
        assert!(!html.contains("hunter22"));
        assert!(html.contains(r#"type="password""#));
    }

    #[test]
    fn errors_attach_to_the_field_they_name() {
        let mut st = FormState::default();
        st.set_error(&reg(), &StorageError::invalid_config("missing required field 'bucket' (Bucket)"));
        assert!(st.errors.contains_key("bucket"));
        let mut st = FormState::default();
        st.set_error(&reg(), &StorageError::transient("network down"));
        assert!(st.general_error.is_some());
    }
}
