//! The dashboard's pages as HTML (maud escapes every value it is given): the layout
//! with its side navigation, the sign-in and error pages, and a report page laid out
//! like the source documents: metric cards, breakdowns (a metric table, a stacked bar
//! chart over the buckets and a donut), group-by switches, heatmaps, the delivery line,
//! and the report's logs with paging and export.

use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};
use parley_core::doc::{ComponentDoc, LogPage, ReportDoc};
use parley_core::report::{enum_values, ColType, Key, Report, Shape};
use parley_core::time::Preset;
use parley_store::FilterOptions;
use serde_json::Value;

use super::charts::{self, Series};
use super::i18n::{duration, Lang};
use super::{PageData, PageView, GROUPS};

fn layout(lang: Lang, title: &str, nav: Option<(&str, &str, &PageView)>, body: Markup) -> Markup {
    let (css, js) = super::asset_urls();
    let ui = lang.ui();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · parley" }
                link rel="stylesheet" href=(css);
                script src=(js) defer {}
            }
            body {
                div class="shell" {
                    @if let Some((ws, ws_name, v)) = nav {
                        nav class="side" aria-label=(ui.reports) {
                            div class="brand" { span class="logo" { "p" } "parley" }
                            div class="ws" title=(ws) { span class="muted" { (ui.workspace) } br; strong { (ws_name) } }
                            div class="nav-title" { (ui.reports) }
                            ul {
                                @for r in Report::ALL {
                                    @let href = format!("/w/{ws}/reports/{}?{}", r.wire(), report_switch_query(v, *r));
                                    li {
                                        a href=(href) class=(if *r == v.report { "active" } else { "" }) aria-current=[(*r == v.report).then_some("page")] {
                                            (lang.term_or(&format!("report:{}", r.wire()), r.wire()))
                                        }
                                    }
                                }
                            }
                            div class="side-foot" {
                                div class="nav-title" { (ui.language) }
                                div class="langs" {
                                    @for l in Lang::ALL {
                                        @let href = format!("?{}", v.with(|x| { x.lang = l; x.page = v.page; }).query());
                                        a href=(href) class=(if l == lang { "active" } else { "" }) hreflang=(l.code()) lang=(l.code()) { (l.native()) }
                                    }
                                }
                                form method="post" action="/logout" {
                                    button class="link" type="submit" { (ui.sign_out) }
                                }
                            }
                        }
                    }
                    main class="main" { (body) }
                }
            }
        }
    }
}

/// The query a report link keeps when it switches report: range, language and `now`,
/// not the filters (each report has its own).
fn report_switch_query(v: &PageView, report: Report) -> String {
    let mut x = v.with(|x| {
        x.filters.clear();
        x.groups.clear();
    });
    x.report = report;
    x.log = report.logs()[0];
    x.query()
}

pub(crate) fn login(lang: Lang, token: &str, next: &str, error: Option<&str>) -> Markup {
    let ui = lang.ui();
    let body = html! {
        div class="login" {
            div class="brand big" { span class="logo" { "p" } "parley" }
            h1 { (ui.sign_in_title) }
            p class="muted" { (ui.sign_in_lead) " " code { "parley token create --scope read" } "." }
            @if let Some(e) = error { p class="error" role="alert" { (e) } }
            form method="post" action="/login" {
                label for="token" { (ui.token_label) }
                input id="token" name="token" type="password" autocomplete="off" required value=(token);
                input type="hidden" name="next" value=(next);
                input type="hidden" name="lang" value=(lang.code());
                button class="primary" type="submit" { (ui.sign_in) }
            }
            div class="langs center" {
                @for l in Lang::ALL {
                    @let href = login_href(l, next);
                    a href=(href) class=(if l == lang { "active" } else { "" }) lang=(l.code()) { (l.native()) }
                }
            }
        }
    };
    layout(lang, ui.sign_in, None, body)
}

fn login_href(lang: Lang, next: &str) -> String {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("lang", lang.code());
    if !next.is_empty() {
        q.append_pair("next", next);
    }
    format!("/login?{}", q.finish())
}

pub(crate) fn error(lang: Lang, ws: &str, status: StatusCode, message: &str) -> Markup {
    let ui = lang.ui();
    let body = html! {
        div class="login" {
            h1 { (ui.error_title) }
            p class="error" role="alert" { (status.as_u16()) " · " (message) }
            p { a href=(format!("/w/{ws}/reports/conversations?lang={}", lang.code())) { (ui.back) } }
        }
    };
    layout(lang, ui.error_title, None, body)
}

fn component<'a>(doc: &'a ReportDoc, id: &str) -> Option<&'a ComponentDoc> {
    doc.components
        .0
        .iter()
        .find(|(k, _)| k == id)
        .map(|(_, c)| c)
}

/// A bucket as shown on an axis: `09:00`, `Nov 18`, `W47`.
fn bucket_label(lang: Lang, doc: &ReportDoc, b: &str) -> String {
    match doc.range.bucket {
        "hour" => {
            let time = b.get(11..16).unwrap_or(b);
            if doc.range.from == doc.range.to {
                time.to_string()
            } else {
                ymd(b).map_or_else(
                    || b.to_string(),
                    |(_, m, d)| format!("{} {time}", lang.day_month(m, d)),
                )
            }
        }
        "week" => b.split_once("-W").map_or_else(
            || b.to_string(),
            |(_, w)| format!("{}{w}", lang.ui().week_prefix),
        ),
        _ => ymd(b).map_or_else(|| b.to_string(), |(_, m, d)| lang.day_month(m, d)),
    }
}

/// The year, month and day of a text that starts `YYYY-MM-DD`.
fn ymd(s: &str) -> Option<(i32, u8, u8)> {
    Some((
        s.get(0..4)?.parse().ok()?,
        s.get(5..7)?.parse().ok()?,
        s.get(8..10)?.parse().ok()?,
    ))
}

fn range_label(lang: Lang, doc: &ReportDoc) -> String {
    let day = |s: &str| ymd(s).map_or_else(|| s.to_string(), |(y, m, d)| lang.date(y, m, d));
    if doc.range.from == doc.range.to {
        day(&doc.range.from)
    } else {
        format!("{} – {}", day(&doc.range.from), day(&doc.range.to))
    }
}

/// The label of a breakdown row: enumerations translated, names as they are.
fn row_label(lang: Lang, key: Key, row_key: &str, label: &str) -> String {
    match key {
        Key::Channel | Key::OpenedChannel | Key::Category | Key::Subtype => label.to_string(),
        _ => lang.term_or(&format!("enum:{row_key}"), label).to_string(),
    }
}

fn placeholder(lang: Lang, status: &str) -> Markup {
    let ui = lang.ui();
    let (class, text) = if status == "filters_not_applicable" {
        ("placeholder not-applicable", ui.not_applicable)
    } else {
        ("placeholder no-data", ui.no_data)
    };
    html! { div class=(class) data-status=(status) { span class="ph-icon" aria-hidden="true" { "∅" } span { (text) } } }
}

fn title(lang: Lang, id: &str) -> String {
    lang.term_or(&format!("comp:{id}"), id).to_string()
}

fn metric_card(lang: Lang, doc: &ReportDoc, id: &str) -> Markup {
    let c = component(doc, id);
    html! {
        div class="card metric" id=(format!("c-{id}")) data-component=(id) {
            div class="metric-label" { (title(lang, id)) }
            @match c {
                Some(c) if c.status == "filters_not_applicable" => { (placeholder(lang, c.status)) }
                Some(c) => {
                    div class="metric-value" data-value=(c.value.unwrap_or(0)) { (lang.int(c.value.unwrap_or(0))) }
                }
                None => {}
            }
        }
    }
}

/// A chart's numbers as a table, folded away under "Show as table".
fn series_table(lang: Lang, labels: &[String], series: &[(String, &[i64])]) -> Markup {
    let ui = lang.ui();
    html! {
        details class="as-table" {
            summary { (ui.show_table) }
            div class="table-wrap" {
                table class="data" {
                    thead { tr { th { (ui.bucket) } @for (name, _) in series { th class="num" { (name) } } } }
                    tbody {
                        @for (b, label) in labels.iter().enumerate() {
                            tr { td { (label) } @for (_, values) in series { td class="num" { (lang.int(values.get(b).copied().unwrap_or(0))) } } }
                        }
                    }
                }
            }
        }
    }
}

fn bar_card(lang: Lang, doc: &ReportDoc, id: &str, labels: &[String]) -> Markup {
    let Some(c) = component(doc, id) else {
        return html! {};
    };
    let t = title(lang, id);
    let series: Vec<(String, &[i64], &str)> = c
        .series
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, s)| {
            (
                lang.term_or(&format!("series:{}", s.key), s.label)
                    .to_string(),
                s.values.as_slice(),
                charts::colour(i),
            )
        })
        .collect();
    html! {
        section class="card chart-card" id=(format!("c-{id}")) data-component=(id) {
            div class="card-head" {
                h3 { (t) }
                @if c.status != "filters_not_applicable" {
                    div class="legend" {
                        @for (name, values, colour) in &series {
                            span class="key" { i class=(swatch_class(colour)) {} (name) " " strong { (lang.int(values.iter().sum())) } }
                        }
                    }
                }
            }
            @if c.status == "ok" {
                @let s: Vec<Series> = series.iter().map(|(label, values, colour)| Series { label, colour, values }).collect();
                (charts::bars(id, &t, lang, labels, &s, false))
                (series_table(lang, labels, &series.iter().map(|(n, v, _)| (n.clone(), *v)).collect::<Vec<_>>()))
            } @else {
                (placeholder(lang, c.status))
            }
        }
    }
}

/// The CSS class that paints a legend swatch in a palette colour (no inline styles).
fn swatch_class(colour: &str) -> String {
    let i = charts::PALETTE
        .iter()
        .position(|p| *p == colour)
        .unwrap_or(0);
    format!("sw sw{i}")
}

fn heatmap_card(lang: Lang, doc: &ReportDoc, id: &str) -> Markup {
    let Some(c) = component(doc, id) else {
        return html! {};
    };
    let t = title(lang, id);
    let ui = lang.ui();
    html! {
        section class="card chart-card" id=(format!("c-{id}")) data-component=(id) {
            div class="card-head" { h3 { (t) } }
            @if c.status == "ok" {
                @let values = c.values.clone().unwrap_or_default();
                (charts::heatmap(id, &t, lang, &values))
                details class="as-table" {
                    summary { (ui.show_table) }
                    div class="table-wrap" {
                        table class="data compact" {
                            thead { tr { th {} @for h in 0..24 { th class="num" { (format!("{h:02}")) } } } }
                            tbody {
                                @for (d, row) in values.iter().enumerate() {
                                    tr { th { (ui.days_short[d % 7]) } @for v in row { td class="num" { (lang.int(*v)) } } }
                                }
                            }
                        }
                    }
                }
            } @else {
                (placeholder(lang, c.status))
            }
        }
    }
}

/// A breakdown (or the delivery line): the metric table, its chart over the buckets
/// and a donut, with the group-by switch above when it has one.
fn breakdown_card(
    lang: Lang,
    v: &PageView,
    doc: &ReportDoc,
    id: &str,
    labels: &[String],
    switch: Option<&super::GroupBy>,
) -> Markup {
    let Some(c) = component(doc, id) else {
        return html! {};
    };
    let ui = lang.ui();
    let t = title(lang, id);
    let shape = v
        .report
        .components()
        .iter()
        .find(|x| x.id == id)
        .map(|x| x.shape);
    let (key, line) = match shape {
        Some(Shape::Breakdown(_, k)) => (k, false),
        Some(Shape::Line(_, k)) => (k, true),
        _ => (Key::Channel, false),
    };
    let rows = c.rows.clone().unwrap_or_default();
    let named: Vec<(String, &str, &parley_core::doc::RowDoc)> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            (
                row_label(lang, key, &r.key, &r.label),
                delivery_colour(&r.key).unwrap_or(charts::colour(i)),
                r,
            )
        })
        .collect();
    // The metric table's first column names what the rows are.
    let head = lang.term_or(
        match key {
            Key::Channel | Key::OpenedChannel => "group:channel",
            Key::Category => "group:category",
            Key::ContactType => "group:contact_type",
            Key::MessageType => "group:type",
            Key::Subtype => "group:subtype",
            Key::Status => "group:status",
            _ => "group:source",
        },
        "",
    );
    html! {
        section class="card chart-card" id=(format!("c-{id}")) data-component=(id) {
            div class="card-head" {
                h3 { (t) }
                @if let Some(total) = c.total { @if c.status == "ok" { span class="total" { (ui.total) (ui.colon) " " strong data-total=(total) { (lang.int(total)) } } } }
            }
            @if let Some(g) = switch {
                div class="switch" role="group" aria-label=(ui.group_by) {
                    span class="muted" { (ui.group_by) }
                    @for (choice, _) in g.choices {
                        @let href = format!("?{}#c-{}", v.with(|x| {
                            x.groups.retain(|(p, _)| *p != g.param);
                            x.groups.push((g.param, choice.to_string()));
                            x.page = v.page;
                            x.log = v.log;
                        }).query(), id);
                        a href=(href) class=(if v.group(g) == *choice { "active" } else { "" }) { (lang.term_or(&format!("group:{choice}"), choice)) }
                    }
                }
            }
            @if c.status == "ok" {
                div class="breakdown" {
                    table class="data metric-table" {
                        thead { tr { th { (head) } th class="num" { (ui.count) } th class="num" { (ui.share) } } }
                        tbody {
                            @for (label, colour, r) in &named {
                                tr data-key=(r.key) {
                                    td { i class=(swatch_class(colour)) {} (label) }
                                    td class="num" data-count=(r.count) { (lang.int(r.count)) }
                                    td class="num" { (lang.percent(r.percent)) }
                                }
                            }
                        }
                    }
                    @if !line {
                        div class="donut" {
                            (charts::donut(&format!("{id}-pie"), &t, lang, &named.iter().map(|(l, c, r)| (l.clone(), *c, r.count)).collect::<Vec<_>>()))
                        }
                    }
                }
                @let series: Vec<Series> = named.iter().map(|(l, c, r)| Series { label: l, colour: c, values: &r.values }).collect();
                @if line {
                    (charts::lines(id, &t, lang, labels, &series))
                } @else {
                    (charts::bars(&format!("{id}-bars"), &t, lang, labels, &series, true))
                }
                (series_table(lang, labels, &named.iter().map(|(l, _, r)| (l.clone(), r.values.as_slice())).collect::<Vec<_>>()))
            } @else {
                (placeholder(lang, c.status))
            }
        }
    }
}

/// The delivery statuses keep their colours whatever their order.
fn delivery_colour(key: &str) -> Option<&'static str> {
    Some(match key {
        "sent" => charts::PALETTE[0],
        "delivered" => charts::PALETTE[1],
        "read" => charts::PALETTE[4],
        "failed" => charts::PALETTE[3],
        _ => return None,
    })
}

/// The values "+ Add filter" offers for a dimension, or `None` for a free text
/// (contact, conversation).
fn dimension_values(
    lang: Lang,
    report: Report,
    name: &str,
    o: &FilterOptions,
) -> Option<Vec<(String, String)>> {
    let pairs = |v: &[(String, String)]| v.to_vec();
    let mut values = if let Some(wires) = enum_values(report, name) {
        wires
            .into_iter()
            .map(|w| (w.to_string(), lang.enum_label(w).to_string()))
            .collect()
    } else {
        match name {
            "opened_channel" | "channel" => pairs(&o.channels),
            "closed_by_team" | "team" => pairs(&o.teams),
            "category" => o
                .categories
                .iter()
                .map(|c| (c.clone(), c.clone()))
                .collect(),
            "broadcast" => o
                .broadcasts
                .iter()
                .map(|c| (c.clone(), c.clone()))
                .collect(),
            "contact" | "conversation" => return None,
            _ => pairs(&o.users),
        }
    };
    values.push(("-".to_string(), lang.ui().none_value.to_string()));
    Some(values)
}

/// A filter value as a chip shows it.
fn value_label(lang: Lang, report: Report, name: &str, value: &str, o: &FilterOptions) -> String {
    if value == "-" {
        return lang.ui().none_value.to_string();
    }
    let find =
        |v: &[(String, String)]| v.iter().find(|(id, _)| id == value).map(|(_, n)| n.clone());
    if enum_values(report, name).is_some() {
        return lang.enum_label(value).to_string();
    }
    match name {
        "opened_channel" | "channel" => find(&o.channels),
        "closed_by_team" | "team" => find(&o.teams),
        "contact" | "conversation" | "category" | "broadcast" => None,
        _ => find(&o.users),
    }
    .unwrap_or_else(|| value.to_string())
}

fn filter_name(lang: Lang, name: &str) -> String {
    lang.term_or(&format!("filter:{name}"), name).to_string()
}

/// The hidden inputs that carry a view through a GET form: its range too when
/// `keep_range` (the range form has its own fields), its filters, switches, log,
/// `now` and language.
fn hidden(v: &PageView, keep_range: bool) -> Markup {
    html! {
        @if keep_range {
            @if let Some(r) = &v.range { input type="hidden" name="range" value=(r); }
            @else {
                @if let Some(f) = &v.from { input type="hidden" name="from" value=(f); }
                @if let Some(t) = &v.to { input type="hidden" name="to" value=(t); }
            }
        }
        @if let Some(n) = &v.now { input type="hidden" name="now" value=(n); }
        @for f in &v.filters { input type="hidden" name="filter" value=(f); }
        @for (p, c) in &v.groups { input type="hidden" name=(p) value=(c); }
        @if v.log != v.report.logs()[0] { input type="hidden" name="log" value=(v.log.wire()); }
        input type="hidden" name="lang" value=(v.lang.code());
    }
}

fn filter_bar(v: &PageView, doc: &ReportDoc, o: &FilterOptions) -> Markup {
    let lang = v.lang;
    let ui = lang.ui();
    let custom = v.range.is_none();
    html! {
        form class="filterbar" method="get" id="range-form" {
            label for="range" class="muted" { (ui.date_range) }
            select id="range" name="range" {
                @for p in Preset::ALL {
                    option value=(p.wire()) selected[v.range.as_deref() == Some(p.wire())] { (lang.term_or(&format!("preset:{}", p.wire()), p.wire())) }
                }
                option value="custom" selected[custom] { (ui.custom_range) }
            }
            span class="dates" {
                label for="from" { (ui.from) }
                input id="from" type="date" name="from" value=(doc.range.from);
                label for="to" { (ui.to) }
                input id="to" type="date" name="to" value=(doc.range.to);
            }
            (hidden(v, false))
            button type="submit" class="primary" { (ui.apply) }
            span class="range-label" { (range_label(lang, doc)) " · " (doc.timezone) }
        }
        div class="chips" {
            @for f in &v.filters {
                @let (name, value) = f.split_once('=').unwrap_or((f, ""));
                @let href = format!("?{}", v.with(|x| x.filters.retain(|g| g != f)).query());
                span class="chip" data-filter=(f) {
                    span class="chip-name" { (filter_name(lang, name)) (ui.colon) " " }
                    (value_label(lang, v.report, name, value, o))
                    a class="chip-x" href=(href) title=(ui.remove_filter) aria-label=(format!("{} {}", ui.remove_filter, f)) { "×" }
                }
            }
            details class="add-filter" {
                summary class="button" { (ui.add_filter) }
                div class="menu" {
                    @for name in v.report.filters() {
                        a href=(format!("?{}", v.with(|x| x.adding = Some(name.to_string())).query())) data-dimension=(name) { (filter_name(lang, name)) }
                    }
                }
            }
            @if !v.filters.is_empty() {
                a class="clear" href=(format!("?{}", v.with(|x| x.filters.clear()).query())) { (ui.clear_all) }
            }
        }
        @if let Some(name) = &v.adding {
            form class="card add-panel" method="get" {
                (hidden(v, true))
                h3 { (filter_name(lang, name)) }
                @match dimension_values(lang, v.report, name, o) {
                    Some(values) => {
                        p class="muted" { (ui.choose_values) }
                        div class="values" {
                            @for (value, label) in values {
                                @let f = format!("{name}={value}");
                                label class="value" {
                                    input type="checkbox" name="filter" value=(f) checked[v.filters.contains(&f)] disabled[v.filters.contains(&f)];
                                    (label)
                                }
                            }
                        }
                    }
                    None => {
                        input type="hidden" name="add_dim" value=(name);
                        input type="text" name="add_value" placeholder=(ui.search_hint) aria-label=(filter_name(lang, name)) required;
                    }
                }
                div class="actions" {
                    button type="submit" class="primary" { (ui.add_value) }
                    a href=(format!("?{}", v.with(|_| {}).query())) { (ui.cancel) }
                }
            }
        }
    }
}

fn section(lang: Lang, key: &str, body: Markup) -> Markup {
    html! {
        section class="group" {
            h2 { (lang.term_or(&format!("section:{key}"), key)) }
            (body)
        }
    }
}

pub(crate) fn report(v: &PageView, data: &PageData) -> Markup {
    let lang = v.lang;
    let ui = lang.ui();
    let doc = &*data.doc;
    let labels: Vec<String> = doc
        .buckets
        .iter()
        .map(|b| bucket_label(lang, doc, b))
        .collect();
    let group = |param: &str| {
        GROUPS
            .iter()
            .find(|g| g.param == param)
            .expect("a group-by")
    };
    let grouped = |param: &str| {
        let g = group(param);
        let choice = v.group(g);
        let id = g
            .choices
            .iter()
            .find(|(c, _)| *c == choice)
            .map_or(g.choices[0].1, |(_, id)| *id);
        breakdown_card(lang, v, doc, id, &labels, Some(g))
    };
    let name = lang.term_or(&format!("report:{}", v.report.wire()), v.report.wire());
    let body = html! {
        header class="top" {
            h1 { (name) }
        }
        (filter_bar(v, doc, &data.options))
        @if data.pending > 0 { p class="notice" role="status" { (ui.pending) } }
        @match v.report {
            Report::Conversations => {
                (section(lang, "overview", html! {
                    div class="cards" { (metric_card(lang, doc, "opened")) (metric_card(lang, doc, "closed")) }
                    (bar_card(lang, doc, "open_vs_closed", &labels))
                }))
                (section(lang, "heatmaps", html! {
                    div class="pair" { (heatmap_card(lang, doc, "opened_heatmap")) (heatmap_card(lang, doc, "closed_heatmap")) }
                }))
                (section(lang, "opened", grouped("opened_by")))
                (section(lang, "closed", grouped("closed_by")))
            }
            Report::Messages => {
                (section(lang, "incoming", breakdown_card(lang, v, doc, "incoming_by_channel", &labels, None)))
                (section(lang, "outgoing", html! {
                    (grouped("outgoing_by"))
                    (breakdown_card(lang, v, doc, "delivery", &labels, None))
                }))
            }
            Report::Contacts => {
                (section(lang, "contacts", html! {
                    div class="cards" { (metric_card(lang, doc, "added")) (metric_card(lang, doc, "deleted")) (metric_card(lang, doc, "merged")) }
                    (bar_card(lang, doc, "added_vs_deleted_vs_merged", &labels))
                    (breakdown_card(lang, v, doc, "added_by_source", &labels, None))
                    (breakdown_card(lang, v, doc, "connected_by_channel", &labels, None))
                }))
            }
            Report::Assignments => {
                (breakdown_card(lang, v, doc, "assignments_by_source", &labels, None))
            }
        }
        (logs(v, data))
    };
    layout(
        lang,
        name,
        Some((&data.workspace.id, &data.workspace.name, v)),
        body,
    )
}

/// A log cell as shown: local times with month names, durations as `hh:mm:ss`,
/// enumerations translated, missing values as `-`.
fn cell(lang: Lang, t: ColType, value: &Value) -> String {
    match (t, value) {
        (_, Value::Null) => "-".to_string(),
        (ColType::Time, Value::String(s)) => match ymd(s) {
            Some((y, m, d)) => format!("{} {}", lang.date(y, m, d), s.get(11..19).unwrap_or("")),
            None => s.clone(),
        },
        (ColType::Duration, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), duration),
        (_, Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), |i| lang.int(i)),
        (ColType::Enum, Value::String(s)) => lang.enum_label(s).to_string(),
        (ColType::User, Value::String(s)) if s == "Unassigned" => lang.ui().unassigned.to_string(),
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

fn logs(v: &PageView, data: &PageData) -> Markup {
    let lang = v.lang;
    let ui = lang.ui();
    let ws = &data.workspace.id;
    let export = format!(
        "/w/{ws}/reports/{}/logs/{}.csv?{}",
        v.report.wire(),
        v.log.wire(),
        v.api_query()
    );
    let types = v.log.columns();
    html! {
        section class="group logs" id="log" {
            h2 { (ui.logs) }
            div class="card" {
                div class="log-head" {
                    nav class="tabs" {
                        @for l in v.report.logs() {
                            a href=(format!("?{}#log", v.with(|x| x.log = *l).query())) class=(if *l == v.log { "active" } else { "" }) { (lang.term_or(&format!("log:{}", l.wire()), l.wire())) }
                        }
                    }
                    a class="button" id="export" href=(export) download { (ui.export_csv) }
                }
                @match &data.log {
                    None => { (placeholder(lang, "filters_not_applicable")) }
                    Some(page) => {
                        (log_table(lang, v, page, &types.iter().map(|(n, t)| (*n, *t)).collect::<Vec<_>>(), &export))
                    }
                }
            }
        }
    }
}

fn log_table(
    lang: Lang,
    v: &PageView,
    page: &LogPage,
    types: &[(&str, ColType)],
    export: &str,
) -> Markup {
    let ui = lang.ui();
    let reachable = page.total.min(parley_core::doc::LOG_CAP);
    let pages = reachable.div_ceil(page.per_page).max(1);
    html! {
        p class="muted log-total" { span data-total=(page.total) { (lang.int(page.total as i64)) } " " (ui.rows_total) }
        @if page.truncated {
            p class="notice cap" { (ui.cap_note) " " a href=(export) download { (ui.cap_link) } }
        }
        @if page.rows.is_empty() {
            p class="empty" { (ui.empty_log) }
        } @else {
            div class="table-wrap" {
                table class="data log" {
                    thead { tr { @for (name, _) in types { th { (lang.term_or(&format!("col:{name}"), name)) } } } }
                    tbody {
                        @for row in &page.rows {
                            tr {
                                @for ((_, value), (_, t)) in row.0.iter().zip(types) {
                                    @let text = cell(lang, *t, value);
                                    td class=(match t { ColType::Int | ColType::Duration => "num", _ => "" }) title=[(text.chars().count() > 40).then_some(text.as_str())] { (text) }
                                }
                            }
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label=(ui.page) {
            @if page.page > 1 {
                a href=(format!("?{}#log", v.with(|x| { x.log = v.log; x.page = page.page - 1; }).query())) rel="prev" { "← " (ui.previous) }
            } @else { span class="disabled" { "← " (ui.previous) } }
            span class="muted" { (ui.page) " " (lang.int(page.page as i64)) " " (ui.of) " " (lang.int(pages as i64)) }
            @if page.page < pages {
                a href=(format!("?{}#log", v.with(|x| { x.log = v.log; x.page = page.page + 1; }).query())) rel="next" { (ui.next) " →" }
            } @else { span class="disabled" { (ui.next) " →" } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parley_core::doc::{LogPage, Ordered, RangeDoc};
    use parley_core::report::Log;

    fn view(lang: Lang) -> PageView {
        PageView {
            report: Report::Messages,
            lang,
            range: Some("last_30_days".into()),
            from: None,
            to: None,
            now: None,
            filters: vec!["channel=wa".into()],
            groups: vec![],
            log: Log::Outgoing,
            page: 2,
            per_page: 50,
            adding: None,
        }
    }

    fn page(total: u64) -> LogPage {
        LogPage {
            report: "messages",
            log: "outgoing",
            range: RangeDoc {
                preset: Some("last_30_days"),
                from: "2026-11-01".into(),
                to: "2026-11-30".into(),
                start: "2026-10-31T23:00:00Z".into(),
                end: "2026-11-30T23:00:00Z".into(),
                bucket: "day",
            },
            filters: Ordered(vec![]),
            total,
            truncated: total > parley_core::doc::LOG_CAP,
            page: 2,
            per_page: 50,
            columns: vec![],
            rows: vec![],
        }
    }

    /// SPEC §6.5: past 10,000 rows the log says so and links to the export; the pager
    /// counts only the pages that can be reached.
    #[test]
    fn a_log_past_the_cap_links_to_its_export() {
        let v = view(Lang::En);
        let cols: Vec<(&str, ColType)> = Log::Outgoing.columns().to_vec();
        let html = log_table(Lang::En, &v, &page(10_250), &cols, "/export.csv").into_string();
        assert!(
            html.contains("The report table shows at most 10,000 rows."),
            "{html}"
        );
        assert!(
            html.contains(r#"<a href="/export.csv" download>Export the CSV for all of them.</a>"#)
        );
        assert!(html.contains("Page 2 of 200"), "{html}");
        assert!(html.contains("10,250"));
        let short = log_table(Lang::Es, &v, &page(120), &cols, "/export.csv").into_string();
        assert!(!short.contains("10.000"), "no note under the cap");
        assert!(short.contains("Página 2 de 3"));
    }

    #[test]
    fn cells_show_local_times_durations_and_translated_values() {
        let at = Value::String("2026-11-24T17:02:11+01:00".into());
        assert_eq!(cell(Lang::En, ColType::Time, &at), "Nov 24, 2026 17:02:11");
        assert_eq!(cell(Lang::Fr, ColType::Time, &at), "24 nov. 2026 17:02:11");
        assert_eq!(
            cell(Lang::En, ColType::Duration, &Value::from(3725)),
            "01:02:05"
        );
        assert_eq!(
            cell(Lang::Es, ColType::Enum, &Value::from("workflow")),
            "Flujo de trabajo"
        );
        assert_eq!(
            cell(Lang::Fr, ColType::User, &Value::from("Unassigned")),
            "Non assigné"
        );
        assert_eq!(cell(Lang::En, ColType::Text, &Value::Null), "-");
        assert_eq!(cell(Lang::Es, ColType::Int, &Value::from(12_345)), "12.345");
    }

    #[test]
    fn bucket_labels_follow_the_bucket_and_the_language() {
        let mut doc = ReportDoc {
            report: "messages",
            workspace: "a".into(),
            timezone: "Europe/Madrid".into(),
            range: page(0).range,
            filters: Ordered(vec![]),
            buckets: vec![],
            components: Ordered(vec![]),
        };
        assert_eq!(bucket_label(Lang::Es, &doc, "2026-11-18"), "18 nov");
        doc.range.bucket = "week";
        assert_eq!(bucket_label(Lang::En, &doc, "2026-W47"), "W47");
        assert_eq!(bucket_label(Lang::Fr, &doc, "2026-W47"), "S47");
        doc.range.bucket = "hour";
        assert_eq!(
            bucket_label(Lang::En, &doc, "2026-11-18T09:00+01:00"),
            "Nov 18 09:00",
            "two days of hours name their day"
        );
        doc.range.to = doc.range.from.clone();
        assert_eq!(
            bucket_label(Lang::En, &doc, "2026-11-18T09:00+01:00"),
            "09:00"
        );
    }
}
