//! The API's routes (documented in `openapi.json`, which a test keeps equal to the router):
//! each parses its request, calls the application layer, and answers JSON.

use super::exports::About;
use super::http::{json_body, ApiError};
use super::state::AppState;
use crate::app::segments::{Precondition, SavedSegment};
use crate::app::workspace::{conditions, export_target, trend_snapshots, Every, ExportSpec};
use crate::app::{Channel, SegmentSource, Workspace};
use crate::catalog::{Entity, ValueType};
use crate::check::typed::TypedSegment;
use crate::diagnostic::Diagnostics;
use crate::error::Error;
use crate::export::Format;
use crate::plan::Target;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Instant;

type Answer = Result<Response, ApiError>;

/// The most rows a preview returns in one call.
pub const MAX_PREVIEW_ROWS: usize = 1000;

pub async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// Diagnostics as the API returns them: with severity, code, span, line and column.
pub fn diagnostics_json(d: &Diagnostics, text: &str) -> Value {
    d.to_json(text)["diagnostics"].clone()
}

fn as_of(text: &Option<String>) -> Result<Option<DateTime<Utc>>, ApiError> {
    text.as_deref()
        .map(|t| crate::syntax::parse_time(t).map_err(|m| Error::Invalid(format!("as_of: {m}"))))
        .transpose()
        .map_err(ApiError::from)
}

fn target(text: Option<&str>) -> Result<Target, ApiError> {
    match text {
        None | Some("installations") => Ok(Target::Installations),
        Some("persons") => Ok(Target::Persons),
        Some(other) => {
            Err(Error::Invalid(format!("target `{other}`: use installations or persons")).into())
        }
    }
}

fn source(text: &str) -> Result<SegmentSource, ApiError> {
    if text.len() > crate::syntax::MAX_SEGMENT_BYTES {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "segments are at most {} bytes",
                crate::syntax::MAX_SEGMENT_BYTES
            ),
        ));
    }
    Ok(SegmentSource::text(text))
}

fn compile(
    state: &AppState,
    w: &Workspace,
    src: &SegmentSource,
    at: Option<DateTime<Utc>>,
) -> Result<TypedSegment, ApiError> {
    Ok(w.check(src, &state.segments.saved(), at)?)
}

pub async fn snapshots(State(state): State<Arc<AppState>>) -> Answer {
    let store = state.store()?;
    let mut list = Vec::new();
    for id in store.snapshot_ids().iter().rev() {
        let m = &store.snapshot(Some(id))?.manifest;
        list.push(json!({
            "id": m.snapshot_id,
            "as_of": m.as_of,
            "created_at": m.created_at,
            "history_start": m.history_start,
            "persons": m.row_counts.persons,
            "installations": m.row_counts.installations,
            "events": m.row_counts.events,
        }));
    }
    Ok(Json(json!({ "latest": store.latest_id()?, "snapshots": list })).into_response())
}

#[derive(Deserialize)]
pub struct SnapshotParam {
    snapshot: Option<String>,
}

fn type_name(ty: ValueType) -> String {
    ty.to_string()
}

pub async fn catalog(State(state): State<Arc<AppState>>, Query(q): Query<SnapshotParam>) -> Answer {
    let w = state.workspace(q.snapshot.as_deref()).await?;
    let m = &w.snapshot().manifest;
    let mut attributes = Vec::new();
    for entity in [Entity::Person, Entity::Installation] {
        for a in m.catalog.attributes(entity) {
            let mut v = json!({
                "entity": entity.to_string(),
                "name": a.name,
                "type": type_name(a.ty),
                "custom": a.custom,
            });
            if let Some(values) = w.values(entity, &a.name) {
                v["values"] = json!(values
                    .iter()
                    .map(|(value, count)| json!({"value": value, "count": count}))
                    .collect::<Vec<_>>());
            }
            attributes.push(v);
        }
    }
    let events: Vec<Value> = m
        .catalog
        .events
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "standard": e.standard,
                "properties": e.properties.iter().map(|p| {
                    let mut v = json!({"name": p.name, "type": type_name(p.ty)});
                    if let Some(values) = w.property_values(&e.name, &p.name) {
                        v["values"] = json!(values.iter()
                            .map(|(value, count)| json!({"value": value, "count": count}))
                            .collect::<Vec<_>>());
                    }
                    v
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Json(json!({
        "snapshot_id": m.snapshot_id,
        "as_of": m.as_of,
        "history_start": m.history_start,
        "attributes": attributes,
        "derived": [
            {"name": "age", "type": "number"},
            {"name": "randomBucket", "type": "number"},
            {"name": "birthday", "type": "anniversary"},
        ],
        "events": events,
        "functions": crate::syntax::ast::AggFunc::ALL
            .iter()
            .map(|f| f.name())
            .chain(["stopped", "restarted"])
            .collect::<Vec<_>>(),
        "keywords": crate::syntax::ast::KEYWORDS,
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct SegmentRequest {
    segment: String,
    snapshot: Option<String>,
    as_of: Option<String>,
}

pub async fn check(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let req: SegmentRequest = json_body(body).await?;
    let src = source(&req.segment)?;
    let w = state.workspace(req.snapshot.as_deref()).await?;
    let at = as_of(&req.as_of)?;
    match w.check(&src, &state.segments.saved(), at) {
        Ok(typed) => {
            let canonical = crate::syntax::parse(&src.text)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let warnings = Diagnostics(typed.warnings.clone());
            Ok(Json(json!({
                "ok": true,
                "diagnostics": diagnostics_json(&warnings, &src.text),
                "canonical": canonical,
                "resolved": typed.root.to_string(),
            }))
            .into_response())
        }
        Err(Error::Segment(s)) => Ok(Json(json!({
            "ok": false,
            "diagnostics": diagnostics_json(&s.diagnostics, &s.text),
        }))
        .into_response()),
        Err(e) => Err(e.into()),
    }
}

pub async fn count(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let started = Instant::now();
    let req: SegmentRequest = json_body(body).await?;
    let src = source(&req.segment)?;
    let at = as_of(&req.as_of)?;
    let w = state.workspace(req.snapshot.as_deref()).await?;
    let typed = compile(&state, &w, &src, at)?;
    let parts = conditions(&src, &typed);
    let alone: Vec<TypedSegment> = parts.iter().map(|(_, _, t)| t.clone()).collect();
    let q = w.query(at, Target::Installations);
    // Kept conditions are bit arithmetic: no query slot to wait for behind previews and exports.
    let report = match w.kept_report(&typed, &alone, q.as_of)? {
        Some(kept) => kept,
        None => {
            state
                .limited(w.count_report(&typed, &alone, q.as_of))
                .await?
        }
    };
    let conditions: Vec<Value> = parts
        .iter()
        .zip(&report.conditions)
        .map(|((text, span, _), (i, p))| {
            json!({"text": text, "span": span, "installations": i, "persons": p})
        })
        .collect();
    Ok(Json(json!({
        "snapshot_id": w.snapshot().id(),
        "as_of": q.as_of,
        "counts": {"installations": report.installations, "persons": report.persons},
        "reachable": {"push": report.push, "email": report.email, "sms": report.sms},
        "conditions": conditions,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "diagnostics": diagnostics_json(&Diagnostics(typed.warnings.clone()), &src.text),
    }))
    .into_response())
}

#[derive(Deserialize)]
pub struct PreviewRequest {
    segment: String,
    target: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
    snapshot: Option<String>,
    as_of: Option<String>,
}

pub async fn preview(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let req: PreviewRequest = json_body(body).await?;
    let limit = req.limit.unwrap_or(50);
    if !(1..=MAX_PREVIEW_ROWS).contains(&limit) {
        return Err(Error::Invalid(format!("limit must be 1 to {MAX_PREVIEW_ROWS}")).into());
    }
    let src = source(&req.segment)?;
    let target = target(req.target.as_deref())?;
    let at = as_of(&req.as_of)?;
    let w = state.workspace(req.snapshot.as_deref()).await?;
    let typed = compile(&state, &w, &src, at)?;
    let q = w.query(at, target);
    // One row more than asked says whether there are more.
    let (_, batches) = state
        .limited(w.preview(&typed, q, &req.columns, req.offset, Some(limit + 1), false))
        .await?;
    let (columns, mut rows) = rows_json(&batches)?;
    let has_more = rows.len() > limit;
    rows.truncate(limit);
    Ok(Json(json!({
        "columns": columns,
        "rows": rows,
        "offset": req.offset,
        "limit": limit,
        "has_more": has_more,
    }))
    .into_response())
}

/// Column names and rows (arrays in column order) of record batches.
fn rows_json(batches: &[arrow::array::RecordBatch]) -> Result<(Vec<String>, Vec<Value>), ApiError> {
    let Some(schema) = batches.first().map(|b| b.schema()) else {
        return Ok((Vec::new(), Vec::new()));
    };
    let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut w = crate::export::RowWriter::new(Vec::new(), Format::Json, schema.clone())?;
    for b in batches {
        w.write(b).map_err(Error::from)?;
    }
    let bytes = w.finish(&schema).map_err(Error::from)?;
    let objects: Vec<serde_json::Map<String, Value>> = serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("rows as JSON: {e}")))?;
    let rows = objects
        .into_iter()
        .map(|mut o| {
            Value::Array(
                columns
                    .iter()
                    .map(|c| o.remove(c).unwrap_or(Value::Null))
                    .collect(),
            )
        })
        .collect();
    Ok((columns, rows))
}

#[derive(Deserialize)]
pub struct ExplainRequest {
    segment: String,
    target: Option<String>,
    #[serde(default)]
    analyze: bool,
    snapshot: Option<String>,
    as_of: Option<String>,
}

pub async fn explain(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let req: ExplainRequest = json_body(body).await?;
    let src = source(&req.segment)?;
    let target = target(req.target.as_deref())?;
    let at = as_of(&req.as_of)?;
    let w = state.workspace(req.snapshot.as_deref()).await?;
    let typed = compile(&state, &w, &src, at)?;
    let e = state
        .limited(w.explain(&typed, w.query(at, target), req.analyze, false))
        .await?;
    Ok(Json(json!(e)).into_response())
}

#[derive(Deserialize)]
pub struct TrendRequest {
    segment: String,
    target: Option<String>,
    from: String,
    to: String,
    every: Option<String>,
    snapshot: Option<String>,
}

/// The as-of points of a trend: `from`, then every `every` up to `to` (both dates or times).
fn trend_points(req: &TrendRequest) -> Result<Vec<DateTime<Utc>>, ApiError> {
    let parse = |t: &str, what: &str| {
        crate::syntax::parse_time(t).map_err(|m| Error::Invalid(format!("{what}: {m}")))
    };
    let (from, to) = (parse(&req.from, "from")?, parse(&req.to, "to")?);
    let every = Every::parse(req.every.as_deref().unwrap_or("1d"))?;
    Ok(crate::app::workspace::trend_points(from, to, every)?)
}

/// The audience at each point, on the snapshot that serves it (the one asked for, else the
/// newest at or before the point): the application's trend job, as `audience trend` runs it.
pub async fn trend(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let started = Instant::now();
    let req: TrendRequest = json_body(body).await?;
    let src = source(&req.segment)?;
    let target = target(req.target.as_deref())?;
    let points = trend_points(&req)?;
    let groups = trend_snapshots(&state.store()?, req.snapshot.as_deref(), &points)?;
    let saved = state.segments.saved();
    let open = |id: String| {
        let state = state.clone();
        async move { state.workspace(Some(&id)).await }
    };
    let t = state
        .limited(crate::app::workspace::trend(
            &groups, &points, &src, &saved, target, open,
        ))
        .await?;
    Ok(Json(json!({
        "target": target,
        "points": t.points,
        "elapsed_ms": started.elapsed().as_secs_f64() * 1000.0,
        "diagnostics": diagnostics_json(&Diagnostics(t.warnings), &src.text),
    }))
    .into_response())
}

fn saved_json(s: &SavedSegment) -> Value {
    json!({"name": s.name, "text": s.text, "etag": s.etag, "modified_at": s.modified_at})
}

pub async fn list_segments(State(state): State<Arc<AppState>>) -> Answer {
    let list: Vec<Value> = state.segments.list()?.iter().map(saved_json).collect();
    Ok(Json(json!({ "segments": list })).into_response())
}

fn with_etag(mut r: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

pub async fn get_segment(State(state): State<Arc<AppState>>, Path(name): Path<String>) -> Answer {
    let s = state.segments.get(&name)?;
    Ok(with_etag(Json(saved_json(&s)).into_response(), &s.etag))
}

#[derive(Deserialize)]
pub struct SegmentText {
    text: String,
}

/// A conflict answers with the segment as it is now, so the page can show both versions.
fn conflict(state: &AppState, name: &str, e: Error) -> ApiError {
    let current = state.segments.get(name).ok();
    ApiError::from(e).with(
        "current",
        current.map_or(Value::Null, |c| json!({"text": c.text, "etag": c.etag})),
    )
}

pub async fn put_segment(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let req: SegmentText = json_body(body).await?;
    let header = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let expect = match (header(header::IF_MATCH), header(header::IF_NONE_MATCH)) {
        (Some(tag), _) => Precondition::Matches(tag.to_string()),
        (None, Some("*")) => Precondition::Absent,
        _ => {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "precondition_required",
                "send If-Match with the segment's ETag to update it, or If-None-Match: * to \
                 create it",
            ))
        }
    };
    let src = source(&req.text)?;
    let w = state.workspace(None).await?;
    compile(&state, &w, &src, None)?;
    let created = expect == Precondition::Absent;
    let saved = match state.segments.put(&name, &req.text, &expect) {
        Err(e @ Error::Conflict(_)) => return Err(conflict(&state, &name, e)),
        other => other?,
    };
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(with_etag(
        (status, Json(saved_json(&saved))).into_response(),
        &saved.etag,
    ))
}

pub async fn delete_segment(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let Some(tag) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send If-Match with the segment's ETag to delete it",
        ));
    };
    match state.segments.delete(&name, tag) {
        Err(e @ Error::Conflict(_)) => Err(conflict(&state, &name, e)),
        other => {
            other?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
    }
}

#[derive(Deserialize)]
pub struct ExportRequest {
    segment: Option<String>,
    #[serde(default)]
    segments: Vec<String>,
    channel: Option<Channel>,
    target: Option<String>,
    format: Format,
    #[serde(default)]
    columns: Vec<String>,
    snapshot: Option<String>,
    as_of: Option<String>,
}

pub async fn start_export(State(state): State<Arc<AppState>>, body: Body) -> Answer {
    let req: ExportRequest = json_body(body).await?;
    let asked = req.target.as_deref().map(|t| target(Some(t))).transpose()?;
    let target = export_target(asked, req.channel)?;
    let at = as_of(&req.as_of)?;
    let w = state.workspace(req.snapshot.as_deref()).await?;
    let mut jobs = Vec::new();
    match (&req.segment, req.segments.is_empty()) {
        (Some(text), true) => {
            jobs.push((compile(&state, &w, &source(text)?, at)?, "audience".into()))
        }
        (None, false) => {
            for name in &req.segments {
                let saved = state.segments.get(name)?;
                let src = SegmentSource {
                    name: format!("{name}.seg"),
                    text: saved.text,
                };
                jobs.push((compile(&state, &w, &src, at)?, name.clone()));
            }
        }
        _ => {
            return Err(Error::Invalid(
                "give either `segment` (a text) or `segments` (saved segment names)".into(),
            )
            .into())
        }
    }
    let spec = ExportSpec {
        as_of: w.query(at, target).as_of,
        target,
        channel: req.channel,
        columns: req.columns.clone(),
        format: req.format,
    };
    // Check the columns now, so a mistake is this request's error, not the job's.
    crate::app::columns::resolve(w.catalog(), &spec.columns, target, spec.channel)?;
    let about = About {
        segments: jobs.iter().map(|(_, n)| n.clone()).collect(),
        channel: req.channel.map(|c| c.name().to_string()),
        target: target.name().to_string(),
        format: req.format.extension().to_string(),
        snapshot_id: w.snapshot().id().to_string(),
        as_of: spec.as_of.to_rfc3339(),
    };
    let job = state.jobs.start(w, jobs, spec, about)?;
    Ok((StatusCode::ACCEPTED, Json(job.to_json())).into_response())
}

pub async fn list_exports(State(state): State<Arc<AppState>>) -> Answer {
    let list: Vec<Value> = state.jobs.list().iter().map(|j| j.to_json()).collect();
    Ok(Json(json!({ "exports": list })).into_response())
}

fn job(state: &AppState, id: &str) -> Result<Arc<super::exports::Job>, ApiError> {
    state
        .jobs
        .get(id)
        .ok_or_else(|| Error::NotFound(format!("there is no export job `{id}`")).into())
}

pub async fn get_export(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    Ok(Json(job(&state, &id)?.to_json()).into_response())
}

pub async fn delete_export(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Answer {
    state.jobs.delete(&id)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn download_export_file(
    State(state): State<Arc<AppState>>,
    Path((id, name)): Path<(String, String)>,
) -> Answer {
    let path = job(&state, &id)?
        .file(&name)
        .ok_or_else(|| Error::NotFound(format!("export `{id}` has no file `{name}`")))?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| Error::io(&path, e))?;
    let kind = match Format::from_path(&path) {
        Some(Format::Csv) => "text/csv",
        Some(Format::Json) => "application/json",
        Some(Format::Jsonl) => "application/x-ndjson",
        _ => "application/octet-stream",
    };
    let stream = tokio_util_stream(file);
    let mut r = Response::new(Body::from_stream(stream));
    let headers = r.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

/// A file as a stream of chunks (a download never holds the whole file in memory).
fn tokio_util_stream(
    file: tokio::fs::File,
) -> impl futures::Stream<Item = std::io::Result<bytes::Bytes>> {
    use tokio::io::AsyncReadExt;
    futures::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 64 * 1024];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    })
}
