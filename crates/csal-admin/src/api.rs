//! The JSON API: the pages' operations for scripts (`Authorization: Bearer`).
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | /api/providers | provider types and their config fields |
//! | GET, POST | /api/modules | list (with status) / create |
//! | GET, PATCH, DELETE | /api/modules/{name} | one module |
//! | POST | /api/modules/{name}/test | validate + health_check |
//! | POST | /api/modules/{name}/enable, /disable | switch on / off |
//! | GET | /api/modules/{name}/metrics | the instance's metrics |
//! | GET | /api/policies | every camera policy |
//! | GET, PUT, DELETE | /api/policies/{camera} | one camera's ordered targets, copies and retention |
//! | GET, POST | /api/holds | legal holds (`?camera=`) / place one |
//! | DELETE | /api/holds/{id} | lift a hold |

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use csal_catalog::{ModuleUpdate, NewModule};
use csal_core::{InstanceInfo, StorageError, find_provider, registered_providers};
use serde_json::{Value, json};

use crate::AdminState;
use crate::status::status_for;
use crate::status::status_of;

/// The `/api/` routes (mounted behind authentication by [`crate::app`]).
pub fn routes() -> Router<AdminState> {
    Router::new()
        .route("/api/providers", get(providers))
        .route("/api/modules", get(list).post(create))
        .route("/api/modules/{name}", get(show).patch(update).delete(remove))
        .route("/api/modules/{name}/test", post(test))
        .route("/api/modules/{name}/enable", post(enable))
        .route("/api/modules/{name}/disable", post(disable))
        .route("/api/modules/{name}/metrics", get(metrics))
        .route("/api/policies", get(policies))
        .route("/api/policies/{camera}", get(get_policy).put(put_policy).delete(delete_policy))
        .route("/api/holds", get(holds).post(add_hold))
        .route("/api/holds/{id}", axum::routing::delete(remove_hold))
}

/// An error as JSON: `{"error": {"kind": "not_found", "message": "..."}}`.
pub struct ApiError(pub StorageError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"kind": self.0.kind(), "message": self.0.to_string()}});
        (status_for(&self.0), Json(body)).into_response()
    }
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        ApiError(e)
    }
}

type ApiResult<T = Json<Value>> = Result<T, ApiError>;

/// A provider's registration as JSON (shared with the CLI's `providers --json`).
pub fn provider_json(r: &csal_core::ProviderRegistration) -> Value {
    json!({
        "provider_type": r.provider_type,
        "display_name": r.display_name,
        "category": r.category,
        "crate": r.crate_name,
        "description": r.description,
        "fields": r.fields.iter().map(|f| json!({
            "key": f.key, "label": f.label, "kind": f.kind, "secret": f.kind.is_secret(),
            "required": f.required, "default": f.default.and_then(|d| serde_json::from_str::<Value>(d).ok()),
            "help": f.help, "doc_url": f.doc_url,
        })).collect::<Vec<_>>(),
    })
}

/// An instance as JSON, with its status summary.
pub fn instance_json(i: &InstanceInfo) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or(Value::Null);
    if let Some(map) = v.as_object_mut() {
        map.insert("health".into(), serde_json::to_value(status_of(i)).unwrap_or(Value::Null));
    }
    v
}

fn find(state: &AdminState, name: &str) -> Result<InstanceInfo, StorageError> {
    state
        .catalog
        .router()
        .instances()
        .into_iter()
        .find(|i| i.name == name || i.id == name)
        .ok_or_else(|| StorageError::not_found(format!("no storage module named '{name}'")))
}

async fn providers() -> Json<Value> {
    Json(Value::Array(registered_providers().into_iter().map(provider_json).collect()))
}

async fn list(State(state): State<AdminState>) -> Json<Value> {
    Json(Value::Array(state.catalog.router().instances().iter().map(instance_json).collect()))
}

async fn show(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    Ok(Json(instance_json(&find(&state, &name)?)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    name: String,
    provider_type: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default = "yes")]
    is_enabled: bool,
    #[serde(default = "empty_object")]
    config: Value,
}
fn yes() -> bool {
    true
}
fn empty_object() -> Value {
    json!({})
}

async fn create(State(state): State<AdminState>, Json(body): Json<CreateBody>) -> Result<Response, ApiError> {
    csal_catalog::check_module_name(&body.name)?;
    let reg = find_provider(&body.provider_type)?;
    reg.check_config(&body.config)?;
    let rec = state
        .catalog
        .create_module(NewModule {
            name: body.name,
            label: body.label,
            provider_type: body.provider_type,
            is_enabled: body.is_enabled,
            config: body.config,
        })
        .await?;
    let _ = state.catalog.router().health_check(&rec.name).await;
    Ok((StatusCode::CREATED, Json(instance_json(&find(&state, &rec.name)?))).into_response())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateBody {
    #[serde(default, with = "double_option")]
    label: Option<Option<String>>,
    config: Option<Value>,
    is_enabled: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

async fn update(State(state): State<AdminState>, Path(name): Path<String>, Json(body): Json<UpdateBody>) -> ApiResult {
    let rec = state
        .catalog
        .update_module(&name, ModuleUpdate { label: body.label, config: body.config, is_enabled: body.is_enabled })
        .await?;
    Ok(Json(instance_json(&find(&state, &rec.name)?)))
}

async fn remove(State(state): State<AdminState>, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    state.catalog.delete_module(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn test(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let report = state.catalog.test_module(&name, false).await?;
    Ok(Json(serde_json::to_value(report).unwrap_or(Value::Null)))
}

async fn enable(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let rec = state.catalog.set_enabled(&name, true).await?;
    let _ = state.catalog.router().health_check(&rec.name).await;
    Ok(Json(instance_json(&find(&state, &rec.name)?)))
}

async fn disable(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let rec = state.catalog.set_enabled(&name, false).await?;
    Ok(Json(instance_json(&find(&state, &rec.name)?)))
}

async fn metrics(State(state): State<AdminState>, Path(name): Path<String>) -> ApiResult {
    let info = find(&state, &name)?;
    let snapshot = state.metrics.snapshot(&info.name).unwrap_or_default();
    Ok(Json(serde_json::to_value(snapshot).unwrap_or(Value::Null)))
}

async fn policies(State(state): State<AdminState>) -> ApiResult {
    let list = state.catalog.list_policies().await?;
    Ok(Json(Value::Array(list.into_iter().map(|(c, p)| policy_json(&c, &p)).collect())))
}

fn policy_json(camera: &str, policy: &csal_catalog::CameraPolicy) -> Value {
    let mut v = serde_json::to_value(policy).unwrap_or(Value::Null);
    v["camera_id"] = json!(camera);
    v
}

/// The policy that applies to the camera; `applies_from` is the camera's
/// own id or `*` (the default policy).
async fn get_policy(State(state): State<AdminState>, Path(camera): Path<String>) -> ApiResult {
    let (from, policy) = state.catalog.policy_in_effect(&camera).await?;
    let mut v = policy_json(&camera, &policy);
    v["applies_from"] = json!(from);
    Ok(Json(v))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyBody {
    targets: Vec<String>,
    #[serde(default)]
    copies: Option<u32>,
    #[serde(default)]
    retention_days: Option<u32>,
    #[serde(default)]
    max_bytes: Option<u64>,
    #[serde(default)]
    keep_days: std::collections::BTreeMap<String, u32>,
    #[serde(default)]
    tiers: Vec<csal_catalog::TierRule>,
}

async fn put_policy(
    State(state): State<AdminState>,
    Path(camera): Path<String>,
    Json(body): Json<PolicyBody>,
) -> ApiResult {
    // The catalog checks the names (they must exist; none twice, at least one).
    let policy = csal_catalog::CameraPolicy {
        targets: body.targets,
        copies: body.copies.unwrap_or(1),
        retention_days: body.retention_days,
        max_bytes: body.max_bytes,
        keep_days: body.keep_days,
        tiers: body.tiers,
    };
    state.catalog.set_policy(&camera, policy.clone()).await?;
    Ok(Json(policy_json(&camera, &policy)))
}

async fn delete_policy(State(state): State<AdminState>, Path(camera): Path<String>) -> Result<StatusCode, ApiError> {
    state.catalog.delete_policy(&camera).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(serde::Deserialize)]
struct HoldsQuery {
    camera: Option<String>,
}

async fn holds(
    State(state): State<AdminState>,
    axum::extract::Query(q): axum::extract::Query<HoldsQuery>,
) -> ApiResult {
    let list = state.catalog.list_holds(q.camera.as_deref()).await?;
    Ok(Json(serde_json::to_value(list).unwrap_or(Value::Null)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    camera_id: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    to: Option<String>,
    reason: String,
    #[serde(default)]
    created_by: Option<String>,
}

async fn add_hold(
    State(state): State<AdminState>,
    axum::Extension(caller): axum::Extension<crate::auth::Caller>,
    Json(body): Json<HoldBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let by = match (&caller, body.created_by) {
        (_, Some(by)) => by,
        (crate::auth::Caller::Token { name, .. }, None) => format!("token {name}"),
        (crate::auth::Caller::Session { .. }, None) => "admin".into(),
    };
    let new = csal_catalog::NewHold {
        camera_id: body.camera_id,
        from_ms: crate::v1::parse_time_param("from", body.from.as_deref())?,
        to_ms: crate::v1::parse_time_param("to", body.to.as_deref())?,
        reason: body.reason,
        created_by: by,
    };
    let (hold, on_providers) = csal_spool::holds::place(&state.catalog, new).await?;
    let mut answer = serde_json::to_value(hold).unwrap_or(Value::Null);
    answer["provider_holds"] = serde_json::to_value(on_providers).unwrap_or(Value::Null);
    Ok((StatusCode::CREATED, Json(answer)))
}

async fn remove_hold(State(state): State<AdminState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    csal_spool::holds::lift(&state.catalog, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
