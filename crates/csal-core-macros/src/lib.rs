//! `#[csal_core::config]`: a provider's instance config, declared once.
//!
//! ```
//! #[csal_core::config(
//!     provider = "gcs",
//!     name = "Google Cloud Storage",
//!     category = object_storage,
//!     description = "Google Cloud Storage buckets (JSON API): resumable uploads, signed URLs.",
//!     timeouts(connect = 10, request = 120, read = 60)
//! )]
//! #[derive(Clone)]
//! pub struct GcsConfig {
//!     /// Name of an existing bucket.
//!     #[field(label = "Bucket", doc_url = "https://cloud.google.com/storage/docs/buckets")]
//!     pub bucket: String,
//!     /// Resumable upload chunk, a multiple of 256 KiB.
//!     #[field(label = "Upload chunk size (KiB)", default = 8192)]
//!     pub chunk_size_kib: usize,
//!     #[field(label = "Endpoint", url, credential_target, default = "https://storage.googleapis.com")]
//!     pub endpoint: String,
//! }
//!
//! # fn main() {
//! use csal_core::ConfigSpec;
//! assert_eq!(GcsConfig::PROVIDER, "gcs");
//! let config: GcsConfig = csal_core::parse_config("gcs", &serde_json::json!({ "bucket": "video" })).unwrap();
//! assert_eq!((config.chunk_size_kib, config.endpoint.as_str()), (8192, "https://storage.googleapis.com"));
//! // Unknown keys are refused, naming the key.
//! let err = csal_core::parse_config::<GcsConfig>("gcs", &serde_json::json!({ "bucket": "v", "bukket": 1 }));
//! assert!(err.unwrap_err().to_string().contains("bukket"));
//! # }
//! ```
//!
//! The struct gets `serde::Deserialize` (unknown fields refused, each
//! `default` applied), a `Debug` that masks secret fields, and
//! `csal_core::ConfigSpec` (provider type, display name, category and
//! description for the registry, `csal_core::register_provider!(Config,
//! factory)`) whose `FIELDS` is the spec: key = field name,
//! kind from the type (`String` text, `SecretString` secret, `bool`,
//! numbers) unless given (`url`, `path`, `secret_multiline`,
//! `select = ["a", "b"]`), required when the field is neither an `Option`
//! nor defaulted, help from `help = ".."` or the doc comment.
//! `timeouts(...)` adds the common `connect_timeout_secs`,
//! `request_timeout_secs` and `read_timeout_secs` fields (with their old
//! names as aliases: `read_alias = "timeout_secs"`) and a `timeouts()` method.
//! `tls` (for providers that make TLS connections) adds the common
//! `ca_file` field (extra trusted CA certificates, PEM) and a `trusted_ca()`
//! method that reads and checks it (needs csal-core's `tls` feature).
#![warn(missing_docs)]

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::parse::Parser;
use syn::{Attribute, Data, DeriveInput, Fields, Ident, Lit, LitStr, Type};

/// Declare a provider's config struct and generate its field spec (see the crate docs).
#[proc_macro_attribute]
pub fn config(args: proc_macro::TokenStream, item: proc_macro::TokenStream) -> proc_macro::TokenStream {
    match expand(args.into(), item.into()) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

#[derive(Default)]
struct Timeout {
    default: Option<syn::LitInt>,
    aliases: Vec<LitStr>,
}

#[derive(Default)]
struct Args {
    provider: Option<LitStr>,
    name: Option<LitStr>,
    category: Option<Ident>,
    description: Option<LitStr>,
    /// connect, request, read
    timeouts: Option<[Timeout; 3]>,
    /// `tls`: the provider makes TLS connections (adds `ca_file`).
    tls: bool,
}

const TIMEOUT_KEYS: [(&str, &str, &str); 3] = [
    ("connect", "Connect timeout (s)", "Longest wait to open a connection to the server."),
    (
        "request",
        "Request timeout (s)",
        "Limit for each request that does not stream a body (metadata calls, one upload part).",
    ),
    ("read", "Read timeout (s)", "Longest wait for the next bytes from the server."),
];

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let mut out = Args::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("provider") {
            out.provider = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("name") {
            out.name = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("category") {
            out.category = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("description") {
            out.description = Some(meta.value()?.parse()?);
            Ok(())
        } else if meta.path.is_ident("timeouts") {
            let mut t: [Timeout; 3] = Default::default();
            meta.parse_nested_meta(|m| {
                for (i, (name, _, _)) in TIMEOUT_KEYS.iter().enumerate() {
                    if m.path.is_ident(name) {
                        t[i].default = Some(m.value()?.parse()?);
                        return Ok(());
                    }
                    if m.path.is_ident(&format!("{name}_alias")) {
                        t[i].aliases.push(m.value()?.parse()?);
                        return Ok(());
                    }
                }
                Err(m.error("expected connect, request, read (= seconds) or connect_alias, request_alias, read_alias"))
            })?;
            if t[0].default.is_none() || t[2].default.is_none() {
                return Err(meta.error("timeouts(...) needs at least connect = N and read = N"));
            }
            out.timeouts = Some(t);
            Ok(())
        } else if meta.path.is_ident("tls") {
            out.tls = true;
            Ok(())
        } else {
            Err(meta.error("expected provider, name, category, description, timeouts(...) or tls"))
        }
    });
    parser.parse2(args)?;
    Ok(out)
}

/// What `#[field(...)]` and the type say about one field.
struct FieldSpec {
    ident: Ident,
    ty: Type,
    optional: bool,
    base: String,
    label: LitStr,
    help: String,
    doc_url: Option<LitStr>,
    default: Option<Lit>,
    kind: TokenStream,
    secret: bool,
    aliases: Vec<LitStr>,
    credential_target: bool,
}

fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    match &last.arguments {
        syn::PathArguments::AngleBracketed(a) => match a.args.first()? {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        },
        _ => None,
    }
}

fn base_name(ty: &Type) -> String {
    match ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()).unwrap_or_default(),
        _ => String::new(),
    }
}

const NUMBERS: &[&str] = &["u8", "u16", "u32", "u64", "usize", "i8", "i16", "i32", "i64", "isize", "f32", "f64"];

fn doc_text(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("doc")) {
        if let syn::Meta::NameValue(nv) = &a.meta
            && let syn::Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) = &nv.value
        {
            lines.push(s.value().trim().to_owned());
        }
    }
    lines.join(" ").trim().to_owned()
}

fn parse_field(field: &mut syn::Field) -> syn::Result<FieldSpec> {
    let ident = field.ident.clone().expect("named field");
    let optional = option_inner(&field.ty).is_some();
    let base = base_name(option_inner(&field.ty).unwrap_or(&field.ty));
    let mut label = None;
    let mut help = None;
    let mut doc_url = None;
    let mut default = None;
    let mut kind_override: Option<TokenStream> = None;
    let mut secret_override = None;
    let mut aliases = Vec::new();
    let mut credential_target = false;
    let mut kept = Vec::new();
    for attr in std::mem::take(&mut field.attrs) {
        if !attr.path().is_ident("field") {
            kept.push(attr);
            continue;
        }
        attr.parse_nested_meta(|m| {
            let p = &m.path;
            if p.is_ident("label") {
                label = Some(m.value()?.parse::<LitStr>()?);
            } else if p.is_ident("help") {
                help = Some(m.value()?.parse::<LitStr>()?.value());
            } else if p.is_ident("doc_url") {
                doc_url = Some(m.value()?.parse::<LitStr>()?);
            } else if p.is_ident("default") {
                default = Some(m.value()?.parse::<Lit>()?);
            } else if p.is_ident("alias") {
                aliases.push(m.value()?.parse::<LitStr>()?);
            } else if p.is_ident("credential_target") {
                credential_target = true;
            } else if p.is_ident("select") {
                let value = m.value()?;
                let content;
                syn::bracketed!(content in value);
                let options = content.parse_terminated(|s| s.parse::<LitStr>(), syn::Token![,])?;
                let options: Vec<_> = options.into_iter().collect();
                kind_override = Some(quote!(::csal_core::FieldKind::Select(&[#(#options),*])));
                secret_override = Some(false);
            } else {
                let kinds = [
                    ("text", quote!(::csal_core::FieldKind::Text), false),
                    ("url", quote!(::csal_core::FieldKind::Url), false),
                    ("path", quote!(::csal_core::FieldKind::Path), false),
                    ("secret", quote!(::csal_core::FieldKind::Secret), true),
                    ("secret_multiline", quote!(::csal_core::FieldKind::SecretMultiline), true),
                ];
                let Some((_, kind, secret)) = kinds.iter().find(|(n, _, _)| p.is_ident(n)) else {
                    return Err(m.error(
                        "expected label, help, doc_url, default, alias, credential_target, select, text, url, path, secret or secret_multiline",
                    ));
                };
                kind_override = Some(kind.clone());
                secret_override = Some(*secret);
            }
            Ok(())
        })?;
    }
    field.attrs = kept;
    let (kind, secret) = match (kind_override, secret_override) {
        (Some(k), Some(s)) => (k, s),
        _ => match base.as_str() {
            "String" => (quote!(::csal_core::FieldKind::Text), false),
            "SecretString" => (quote!(::csal_core::FieldKind::Secret), true),
            "bool" => (quote!(::csal_core::FieldKind::Bool), false),
            b if NUMBERS.contains(&b) => (quote!(::csal_core::FieldKind::Number), false),
            _ => {
                return Err(syn::Error::new_spanned(
                    &field.ty,
                    "cannot tell this field's kind from its type: add #[field(select = [...])] or text/url/path",
                ));
            }
        },
    };
    let label =
        label.ok_or_else(|| syn::Error::new_spanned(&ident, "missing #[field(label = \"...\")] (shown in forms)"))?;
    if optional && default.is_some() {
        return Err(syn::Error::new_spanned(&field.ty, "a field with a default is not an Option: drop the Option"));
    }
    Ok(FieldSpec {
        help: help.unwrap_or_else(|| doc_text(&field.attrs)),
        ty: field.ty.clone(),
        ident,
        optional,
        base,
        label,
        doc_url,
        default,
        kind,
        secret,
        aliases,
        credential_target,
    })
}

/// A default's JSON text, as the spec shows it.
fn default_json(lit: &Lit) -> syn::Result<String> {
    Ok(match lit {
        Lit::Str(s) => {
            let mut out = String::from("\"");
            for c in s.value().chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Lit::Int(i) => i.base10_digits().to_owned(),
        Lit::Float(f) => f.base10_digits().to_owned(),
        Lit::Bool(b) => b.value.to_string(),
        other => return Err(syn::Error::new_spanned(other, "a default is a string, number or bool literal")),
    })
}

/// The body of the serde default function of a defaulted field.
fn default_expr(spec: &FieldSpec, lit: &Lit) -> syn::Result<TokenStream> {
    let ty = &spec.ty;
    Ok(match (spec.base.as_str(), lit) {
        ("String", Lit::Str(s)) => quote!(::std::string::String::from(#s)),
        (b, Lit::Int(_) | Lit::Float(_)) if NUMBERS.contains(&b) => quote!(#lit),
        ("bool", Lit::Bool(_)) => quote!(#lit),
        ("SecretString", _) => return Err(syn::Error::new_spanned(lit, "a secret has no default")),
        (_, Lit::Str(s)) => quote!(::csal_core::spec::default_from_str::<#ty>(#s)),
        _ => return Err(syn::Error::new_spanned(lit, "this default does not fit the field's type")),
    })
}

fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let provider = args
        .provider
        .clone()
        .ok_or_else(|| syn::Error::new(Span::call_site(), "missing provider = \"provider_type\""))?;
    let missing = |what: &str| syn::Error::new(Span::call_site(), format!("missing {what} (shown in the admin UI)"));
    let display = args.name.clone().ok_or_else(|| missing("name = \"Display name\""))?;
    let description = args.description.clone().ok_or_else(|| missing("description = \"One sentence\""))?;
    let category = args.category.clone().ok_or_else(|| missing("category = object_storage | file_sync | ..."))?;
    let category = match category.to_string().as_str() {
        "object_storage" => quote!(ObjectStorage),
        "file_sync" => quote!(FileSync),
        "network_protocol" => quote!(NetworkProtocol),
        "local" => quote!(Local),
        "database" => quote!(Database),
        _ => {
            return Err(syn::Error::new_spanned(
                category,
                "category is one of object_storage, file_sync, network_protocol, local, database",
            ));
        }
    };
    let mut input: DeriveInput = syn::parse2(item)?;
    let name = input.ident.clone();
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(&input.generics, "a config struct has no generics"));
    }
    let Data::Struct(data) = &mut input.data else {
        return Err(syn::Error::new_spanned(&input.ident, "#[csal_core::config] goes on a struct"));
    };
    let Fields::Named(named) = &mut data.fields else {
        return Err(syn::Error::new_spanned(&input.ident, "#[csal_core::config] needs named fields"));
    };

    // The common timeouts become ordinary fields.
    if let Some(timeouts) = &args.timeouts {
        for ((key, label, help), t) in TIMEOUT_KEYS.iter().zip(timeouts) {
            let Some(default) = &t.default else { continue };
            let ident = format_ident!("{key}_timeout_secs");
            let aliases = &t.aliases;
            let field: syn::FieldsNamed = syn::parse_quote!({
                #[doc = #help]
                #[field(label = #label, default = #default #(, alias = #aliases)*)]
                pub #ident: u64
            });
            named.named.extend(field.named);
        }
    }

    // A TLS client's extra trust roots, the same key and text everywhere.
    if args.tls {
        let field: syn::FieldsNamed = syn::parse_quote!({
            /// PEM file of extra CA certificates to trust (a private CA), added to the operating system's trust store.
            #[field(label = "CA file (PEM)", path, credential_target, doc_url = "https://github.com/csal-rs/csal/blob/main/docs/security.md#tls-trust-roots")]
            pub ca_file: ::std::option::Option<::std::string::String>
        });
        named.named.extend(field.named);
    }

    let mut specs = Vec::new();
    for field in named.named.iter_mut() {
        let spec = parse_field(field)?;
        if spec.default.is_some() {
            let f = format_ident!("__csal_default_{}", spec.ident);
            let path = format!("{name}::{f}");
            field.attrs.push(syn::parse_quote!(#[serde(default = #path)]));
        }
        for alias in &spec.aliases {
            field.attrs.push(syn::parse_quote!(#[serde(alias = #alias)]));
        }
        specs.push(spec);
    }

    let mut default_fns = Vec::new();
    let mut entries = Vec::new();
    let mut debug_fields = Vec::new();
    for spec in &specs {
        let key = spec.ident.to_string();
        let label = &spec.label;
        let kind = &spec.kind;
        let mut entry = quote!(::csal_core::ConfigField::of_kind(#key, #label, #kind));
        if !spec.optional && spec.default.is_none() {
            entry = quote!(#entry.required());
        }
        if let Some(lit) = &spec.default {
            let json = default_json(lit)?;
            entry = quote!(#entry.default(#json));
            let f = format_ident!("__csal_default_{}", spec.ident);
            let ty = &spec.ty;
            let expr = default_expr(spec, lit)?;
            default_fns.push(quote! {
                #[doc(hidden)]
                pub fn #f() -> #ty { #expr }
            });
        }
        if !spec.help.is_empty() {
            let help = &spec.help;
            entry = quote!(#entry.help(#help));
        }
        if let Some(url) = &spec.doc_url {
            entry = quote!(#entry.doc(#url));
        }
        if !spec.aliases.is_empty() {
            let aliases = &spec.aliases;
            entry = quote!(#entry.aliases(&[#(#aliases),*]));
        }
        if spec.credential_target {
            entry = quote!(#entry.credential_target());
        }
        entries.push(entry);
        let ident = &spec.ident;
        debug_fields.push(match (spec.secret, spec.optional) {
            (true, true) => quote!(.field(#key, &self.#ident.as_ref().map(|_| ::csal_core::secret::MASK))),
            (true, false) => quote!(.field(#key, &::csal_core::secret::MASK)),
            (false, _) => quote!(.field(#key, &self.#ident)),
        });
    }

    let timeouts_fn = args.timeouts.as_ref().map(|t| {
        let request = if t[1].default.is_some() {
            quote!(::std::option::Option::Some(self.request_timeout_secs))
        } else {
            quote!(::std::option::Option::None)
        };
        quote! {
            /// The common timeouts (`connect_timeout_secs`, `read_timeout_secs`,
            /// `request_timeout_secs`); zero is refused naming the key.
            pub fn timeouts(&self) -> ::csal_core::Result<::csal_core::Timeouts> {
                ::csal_core::Timeouts::from_secs(self.connect_timeout_secs, self.read_timeout_secs, #request)
                    .map_err(|e| e.with_provider(#provider))
            }
        }
    });

    let tls_fn = args.tls.then(|| {
        quote! {
            /// The `ca_file` certificates, read and checked (`None` when not
            /// set); a missing or non-PEM file is an `InvalidConfig` error.
            pub fn trusted_ca(&self) -> ::csal_core::Result<::std::option::Option<::csal_core::tls::CaFile>> {
                ::csal_core::tls::CaFile::from_config(self.ca_file.as_deref()).map_err(|e| e.with_provider(#provider))
            }
        }
    });

    let name_str = name.to_string();
    Ok(quote! {
        // serde through csal-core, so a provider crate needs no serde dependency of its own.
        #[derive(::csal_core::__private::serde::Deserialize)]
        #[serde(crate = "::csal_core::__private::serde", deny_unknown_fields)]
        #input

        impl #name {
            #(#default_fns)*
            #timeouts_fn
            #tls_fn
        }

        impl ::csal_core::ConfigSpec for #name {
            const PROVIDER: &'static str = #provider;
            const DISPLAY_NAME: &'static str = #display;
            const CATEGORY: ::csal_core::ProviderCategory = ::csal_core::ProviderCategory::#category;
            const DESCRIPTION: &'static str = #description;
            const FIELDS: &'static [::csal_core::ConfigField] = &[#(#entries),*];
        }

        impl ::std::fmt::Debug for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.debug_struct(#name_str)#(#debug_fields)*.finish()
            }
        }
    })
}
