//! The annotator's HTML pages, rendered on the server with every value
//! escaped: the login form, the reader's cohorts, a cohort's images and
//! the viewer. Pages carry no script of their own (the content security
//! policy forbids inline script); the viewer's behaviour is
//! `assets/viewer.js`, which reads what it needs from `data-` attributes.
//!
//! Pages name images by UID only: no patient name, ID or date is shown.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::access::{cohort_images, may_open, visible_cohorts};
use super::api::authorised_image;
use super::auth::Reader;

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out += "&amp;",
            '<' => out += "&lt;",
            '>' => out += "&gt;",
            '"' => out += "&quot;",
            '\'' => out += "&#39;",
            c => out.push(c),
        }
    }
    out
}

fn document(title: &str, reader: Option<&Reader>, body: &str) -> Html<String> {
    let bar = match reader {
        Some(reader) => format!(
            "<header><a href=\"/annotate/\">chestnode annotator</a>\
             <span class=\"who\">{} ({})</span>\
             <form method=\"post\" action=\"/annotate/logout\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\" id=\"logout\">Log out</button></form></header>",
            escape(&reader.name),
            reader.role.name(),
            escape(&reader.csrf)
        ),
        None => "<header><span>chestnode annotator</span></header>".to_owned(),
    };
    Html(format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} - chestnode</title>\
         <link rel=\"stylesheet\" href=\"/annotate/assets/style.css\"></head>\
         <body>{bar}<main>{body}</main>\
         <footer>Research use only, not for diagnosis.</footer></body></html>",
        escape(title)
    ))
}

/// The login form; `token` is the form's double-submit token.
pub fn login(token: &str, error: Option<&str>) -> Html<String> {
    let error = error
        .map(|e| format!("<p class=\"error\" id=\"login-error\">{}</p>", escape(e)))
        .unwrap_or_default();
    document(
        "Log in",
        None,
        &format!(
            "<h1>Log in</h1>{error}\
             <form method=\"post\" action=\"/annotate/login\" class=\"login\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <label>User name <input name=\"username\" id=\"username\" autocomplete=\"username\" required></label>\
             <label>Password <input name=\"password\" id=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
             <button type=\"submit\" id=\"login\">Log in</button></form>",
            escape(token)
        ),
    )
}

fn failed(error: anyhow::Error) -> Response {
    tracing::warn!(%error, "annotator page failed");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "the page could not be made",
    )
        .into_response()
}

/// `GET /annotate/`: the cohorts the reader sees.
pub async fn index(State(state): State<Arc<AppState>>, reader: Reader) -> Response {
    let ledger = state.store.ledger().clone();
    let who = reader.clone();
    let names = match tokio::task::spawn_blocking(move || visible_cohorts(&ledger, &who)).await {
        Ok(Ok(names)) => names,
        Ok(Err(error)) => return failed(error),
        Err(error) => return failed(error.into()),
    };
    let list = if names.is_empty() {
        "<p>No cohort is assigned to you yet.</p>".to_owned()
    } else {
        let items: String = names
            .iter()
            .map(|n| {
                format!(
                    "<li><a class=\"cohort\" href=\"/annotate/cohorts/{0}\">{0}</a></li>",
                    escape(n)
                )
            })
            .collect();
        format!("<ul class=\"cohorts\">{items}</ul>")
    };
    document("Cohorts", Some(&reader), &format!("<h1>Cohorts</h1>{list}")).into_response()
}

/// `GET /annotate/cohorts/{name}`: the images of a cohort's newest version.
pub async fn cohort(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(name): Path<String>,
) -> Response {
    if crate::research::cohort::validate_name(&name).is_err() || !may_open(&reader, &name) {
        return (StatusCode::NOT_FOUND, "no such cohort").into_response();
    }
    let ledger = state.store.ledger().clone();
    let cohort_name = name.clone();
    let images =
        match tokio::task::spawn_blocking(move || cohort_images(&ledger, &cohort_name)).await {
            Ok(Ok(Some(images))) => images,
            Ok(Ok(None)) => return (StatusCode::NOT_FOUND, "no such cohort").into_response(),
            Ok(Err(error)) => return failed(error),
            Err(error) => return failed(error.into()),
        };
    state
        .audit(
            &reader.name,
            "annotator.cohort-view",
            &name,
            serde_json::json!({ "images": images.len() }),
        )
        .await;
    let rows: String = images
        .iter()
        .enumerate()
        .map(|(i, image)| {
            format!(
                "<tr><td>{}</td><td><a class=\"image\" href=\"/annotate/images/{1}\">{1}</a></td>\
                 <td class=\"uid\">{2}</td></tr>",
                i + 1,
                escape(&image.sop_instance_uid),
                escape(&image.series_instance_uid)
            )
        })
        .collect();
    document(
        &name,
        Some(&reader),
        &format!(
            "<h1>Cohort {}</h1><p>{} image(s) in the newest version.</p>\
             <table class=\"images\"><thead><tr><th>#</th><th>SOP Instance UID</th>\
             <th>Series</th></tr></thead><tbody>{rows}</tbody></table>",
            escape(&name),
            images.len()
        ),
    )
    .into_response()
}

/// `GET /annotate/images/{sop}`: the viewer.
pub async fn viewer(
    State(state): State<Arc<AppState>>,
    reader: Reader,
    Path(sop): Path<String>,
) -> Response {
    let (instance, cohort) = match authorised_image(&state, &reader, &sop).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let uid = escape(&instance.sop_instance_uid);
    let options = |pairs: &[(&str, &str)]| -> String {
        pairs
            .iter()
            .map(|(value, label)| format!("<option value=\"{value}\">{label}</option>"))
            .collect()
    };
    let findings = options(&[
        ("nodule-mass", "Nodule / mass"),
        ("tuberculosis", "Tuberculosis"),
        ("pneumonia", "Pneumonia"),
        ("mediastinal", "Mediastinal"),
        ("copd", "COPD"),
        ("screening-d", "Screening D"),
        ("normal", "Normal"),
        ("other", "Other"),
    ]);
    let certainty = options(&[
        ("definite", "Definite"),
        ("probable", "Probable"),
        ("possible", "Possible"),
    ]);
    let confirmed = options(&[
        ("", "Not confirmed"),
        ("pathology", "Pathology"),
        ("culture", "Culture"),
        ("other", "Other"),
    ]);
    let body = format!(
        "<h1>Image <span class=\"uid\">{uid}</span></h1>\
         <p><a href=\"/annotate/cohorts/{cohort_link}\">Back to cohort {cohort_text}</a></p>\
         <div id=\"viewer\" data-sop=\"{uid}\" data-csrf=\"{csrf}\">\
         <div class=\"tools\">\
         <fieldset><legend>Tool</legend>\
         <label><input type=\"radio\" name=\"tool\" value=\"pan\" checked> Pan</label>\
         <label><input type=\"radio\" name=\"tool\" value=\"box\" id=\"tool-box\"> Box</label>\
         <label><input type=\"radio\" name=\"tool\" value=\"polygon\" id=\"tool-polygon\"> Polygon</label>\
         <label><input type=\"radio\" name=\"tool\" value=\"image\" id=\"tool-image\"> Image level</label>\
         </fieldset>\
         <fieldset><legend>Window</legend>\
         <label>Width <input type=\"range\" id=\"ww\" min=\"1\" max=\"255\" value=\"255\"></label>\
         <label>Level <input type=\"range\" id=\"wl\" min=\"0\" max=\"255\" value=\"128\"></label>\
         <button type=\"button\" id=\"reset\">Reset view</button></fieldset>\
         <label><input type=\"checkbox\" id=\"show-findings\"> Show the node's findings</label>\
         <fieldset><legend>Annotation</legend>\
         <label>Finding <select id=\"finding\">{findings}</select></label>\
         <label>Other: <input id=\"finding-text\" maxlength=\"500\"></label>\
         <label>Certainty <select id=\"certainty\">{certainty}</select></label>\
         <label>Confirmed <select id=\"confirmed\">{confirmed}</select></label>\
         <button type=\"button\" id=\"save\">Save</button> <span id=\"message\" role=\"status\"></span>\
         </fieldset></div>\
         <canvas id=\"canvas\" width=\"800\" height=\"800\"></canvas>\
         <p class=\"hint\">Wheel: zoom. Pan tool or middle button: move. Right button: window/level. \
         Polygon: click the points, double-click to close.</p>\
         <h2>Annotations</h2><table id=\"annotations\"><thead><tr><th>Reader</th><th>Finding</th>\
         <th>Certainty</th><th>Location</th><th>Confirmed</th></tr></thead><tbody></tbody></table>\
         </div><script src=\"/annotate/assets/viewer.js\"></script>",
        cohort_link = escape(&cohort),
        cohort_text = escape(&cohort),
        csrf = escape(&reader.csrf),
    );
    document("Viewer", Some(&reader), &body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
