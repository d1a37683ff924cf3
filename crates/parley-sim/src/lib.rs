//! A deterministic generator of a realistic workspace's activity, as NDJSON events of
//! SPEC §2: `parley simulate` and `parley demo`.
//!
//! The same [`Config`] (seed included) always gives the same bytes: the generator draws
//! from one PCG stream (`rand_pcg`, whose output is fixed by its algorithm) in a fixed
//! order, and formats every line itself. It streams: its memory is the directory and a
//! few bytes per contact, whatever the number of messages.
//!
//! What a run holds, so that every report has something to show:
//! - a directory of teams, agents with work shifts, a supervisor, and a channel of every
//!   kind; one channel and one agent are deleted mid-period;
//! - conversations arriving on a daily and weekly pattern in the workspace's zone (quiet
//!   nights, busy Monday mornings), from new and returning contacts (some keep their
//!   assignee), opened from every OpenSource;
//! - bot and workflow auto-replies, assignments by workflow and by the supervisor,
//!   reassignments and unassignments; agents' replies after log-normal delays whose
//!   median grows with the load on the shift;
//! - closes from every CloseSource with categories and summaries, merges and deletions;
//! - WhatsApp template broadcasts with a delivery funnel (sent, delivered, read, some
//!   failed with WhatsApp's error codes), Facebook message tags;
//! - receipts written before their message, read receipts after the 30 days that count,
//!   and a share of events re-sent as duplicates, as webhooks do.

use std::io::Write;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, LogNormal};
use rand_pcg::Pcg64Mcg;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    pub seed: u64,
    /// Days simulated, ending with `end` (included).
    pub days: u32,
    pub end: Date,
    /// The workspace's IANA zone: the daily and weekly pattern is local to it.
    pub timezone: String,
    /// Contacts in the pool: new contacts are drawn from it until it is used up.
    pub contacts: u64,
    /// Conversations opened over the whole period, about.
    pub conversations: u64,
    /// Agents (users who answer), at least 3.
    pub agents: u32,
    /// Nothing happens at or after this instant (the demo simulates up to now, not to
    /// the end of today).
    pub until: Option<jiff::Timestamp>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            seed: 1,
            days: 90,
            end: Date::constant(2026, 11, 30),
            timezone: "Europe/Madrid".into(),
            contacts: 30_000,
            conversations: 50_000,
            agents: 20,
            until: None,
        }
    }
}

/// What a run wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines written, re-sends included.
    pub events: u64,
    /// Lines that repeat an earlier line (same id, same content).
    pub resends: u64,
    pub conversations: u64,
    pub messages: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("unknown time zone {0:?}")]
    Zone(String),
    #[error("{0}")]
    Config(String),
    #[error("could not write the events: {0}")]
    Io(#[from] std::io::Error),
}

const MICROS: i64 = 1_000_000;
const MINUTE: i64 = 60 * MICROS;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// Channel kinds of SPEC §1, each with a channel; whatsapp has a second one, deleted
/// mid-period. (id, name, kind, weight of new conversations).
const CHANNELS: &[(&str, &str, &str, u32)] = &[
    ("wa-sales", "WhatsApp Ventas", "whatsapp", 34),
    ("wa-old", "WhatsApp (número antiguo)", "whatsapp", 8),
    ("fb", "Messenger", "messenger", 12),
    ("ig", "Instagram", "instagram", 12),
    ("tg", "Telegram", "telegram", 4),
    ("line", "LINE", "line", 2),
    ("viber", "Viber", "viber", 2),
    ("web", "Chat web", "webchat", 12),
    ("mail", "Correo", "email", 7),
    ("sms", "SMS", "sms", 3),
    ("gbm", "Google Business", "google_business", 2),
    ("tiktok", "TikTok", "tiktok", 2),
    ("api", "Canal propio", "custom", 1),
];
/// The channel deleted mid-period, and the one broadcasts go out on.
const DELETED_CHANNEL: usize = 1;
const BROADCAST_CHANNEL: usize = 0;

const TEAMS: &[(&str, &str)] = &[
    ("t-sales", "Ventas"),
    ("t-support", "Soporte"),
    ("t-billing", "Facturación"),
];

const AGENT_NAMES: &[&str] = &[
    "Lucía Fernández",
    "Hugo Martín",
    "Sofía García",
    "Mateo López",
    "Martina Sánchez",
    "Leo Pérez",
    "Valeria Gómez",
    "Daniel Ruiz",
    "Paula Díaz",
    "Pablo Moreno",
    "Camille Dubois",
    "Yasmin Haddad",
    "Chen Wei",
    "Aiko Tanaka",
    "Omar Benali",
    "Julia Romero",
    "Álvaro Navarro",
    "Carmen Torres",
    "Diego Ramos",
    "Elena Gil",
];

const FIRST_NAMES: &[&str] = &[
    "Ana",
    "Carlos",
    "María",
    "José",
    "Laura",
    "Javier",
    "Marta",
    "David",
    "Cristina",
    "Sergio",
    "Nuria",
    "Raúl",
    "Inés",
    "Jorge",
    "Alba",
    "Iván",
    "Claire",
    "Louis",
    "Chloé",
    "Nicolas",
    "Fatima",
    "Youssef",
    "محمد",
    "فاطمة",
    "王芳",
    "李娜",
    "佐藤",
    "김민준",
    "Olga",
    "Giulia",
    "João",
    "Zoë",
    "Björn",
    "Ana 🌻",
    "Kiko 🎸",
];
const LAST_NAMES: &[&str] = &[
    "García",
    "Rodríguez",
    "González",
    "Fernández",
    "López",
    "Martínez",
    "Sánchez",
    "Pérez",
    "Martín",
    "Gómez",
    "Ruiz",
    "Hernández",
    "Jiménez",
    "Moreau",
    "Lefèvre",
    "El Amrani",
    "الحسني",
    "陈",
    "田中",
    "Rossi",
    "Silva",
    "Müller",
    "O'Brien",
    "Ng",
];

/// Local hours' weights of new conversations (quiet nights, a morning and an
/// afternoon peak), and the weekdays' (Monday first).
const HOURS: [f64; 24] = [
    0.10, 0.05, 0.04, 0.03, 0.04, 0.08, 0.20, 0.45, 0.95, 1.55, 1.85, 1.75, 1.40, 1.15, 1.35, 1.50,
    1.45, 1.25, 0.95, 0.75, 0.60, 0.45, 0.28, 0.16,
];
const WEEKDAYS: [f64; 7] = [1.35, 1.15, 1.10, 1.05, 0.95, 0.42, 0.33];

const CONTACT_SOURCES: &[(&str, u32)] = &[
    ("incoming_message", 60),
    ("user", 10),
    ("contact_import", 8),
    ("developer_api", 6),
    ("echo_message", 3),
    ("zapier", 3),
    ("make", 3),
    ("click_to_chat_ad", 7),
];
const OPEN_SOURCES: &[(&str, u32)] = &[
    ("contact", 62),
    ("workflow", 10),
    ("user", 9),
    ("developer_api", 5),
    ("zapier", 3),
    ("make", 3),
    ("click_to_chat_ad", 8),
];
/// Closes counted in reports; `contact_merged`/`contact_deleted` come with merges and
/// deletions.
const CLOSE_SOURCES: &[(&str, u32)] = &[
    ("user", 52),
    ("bot", 14),
    ("workflow", 16),
    ("developer_api", 6),
    ("zapier", 4),
    ("make", 3),
    ("blocked", 5),
];
/// Close categories (an empty one counts as missing).
const CATEGORIES: &[(&str, u32)] = &[
    ("Soporte", 30),
    ("Ventas", 24),
    ("Información", 14),
    ("Facturación", 10),
    ("Devoluciones", 8),
    ("Reclamación", 5),
    ("", 9),
];
const SUMMARIES: &[&str] = &[
    "Pedido confirmado",
    "Incidencia resuelta por teléfono",
    "Cliente pide factura rectificativa",
    "Consulta sobre plazos de entrega",
    "Devolución aceptada",
];
const TAGS: &[&str] = &[
    "HUMAN_AGENT",
    "POST_PURCHASE_UPDATE",
    "ACCOUNT_UPDATE",
    "CONFIRMED_EVENT_UPDATE",
];
const TEMPLATES: &[(&str, &str)] = &[
    ("promo_rebajas", "Rebajas de temporada"),
    ("order_update", "Estado del pedido"),
    ("appointment_reminder", "Recordatorio de cita"),
    ("black_friday", "Black Friday"),
];
/// WhatsApp Cloud API errors of undelivered messages.
const WA_ERRORS: &[&str] = &[
    "131026: Message undeliverable",
    "131049: This message was not delivered to maintain healthy ecosystem engagement",
    "131047: Re-engagement message",
    "131050: User has stopped marketing messages",
    "130472: User's number is part of an experiment",
];
const CHANNEL_ERRORS: &[&str] = &[
    "551: This person isn't available right now",
    "10: Message sent outside of allowed window",
    "30003: Unreachable destination handset",
];
const INCOMING: &[&str] = &[
    "Hola, ¿tenéis disponible la talla M?",
    "Buenas, mi pedido no ha llegado todavía",
    "¿Cuál es el horario de la tienda?",
    "Quiero devolver un producto",
    "Gracias!",
    "Me llegó la factura duplicada",
    "¿Hacéis envíos a Francia?",
];
const REPLIES: &[&str] = &[
    "¡Hola! Ahora mismo lo reviso.",
    "Te paso el enlace de seguimiento.",
    "Sí, la tenemos en stock.",
    "Perfecto, gestiono la devolución.",
    "¿Me confirmas el número de pedido?",
];

/// A user of the directory: agents answer; the supervisor assigns, merges and deletes.
struct Agent {
    id: String,
    /// Local hours on shift [from, to), and whether they work weekends.
    from: u32,
    to: u32,
    weekends: bool,
    /// The instant the agent is deleted (never works after it).
    deleted_at: i64,
}

/// Per contact: what the generator must know to keep SPEC §2's rules.
#[derive(Clone, Copy, Default)]
struct Contact {
    seen: bool,
    gone: bool,
    /// The close of its last conversation (`i64::MAX` while one stays open).
    busy_until: i64,
    /// 1 + index of its agent, 0 for none.
    assignee: u16,
}

/// The output: lines built in a buffer, ids numbered, re-sends kept a little while.
struct Out<'w> {
    w: std::io::BufWriter<&'w mut dyn Write>,
    line: Vec<u8>,
    next_event: u64,
    stats: Stats,
    /// Lines to write again later, with how many lines later.
    resend: Vec<(Vec<u8>, u32)>,
    /// The day whose date prefix is cached, and that prefix (`YYYY-MM-DDT`).
    day: i64,
    prefix: [u8; 11],
}

impl Out<'_> {
    /// Starts an event line: `{"id":"e…","type":"…","at":"…"`.
    fn begin(&mut self, kind: &str, at: i64) {
        self.line.clear();
        self.line.extend_from_slice(b"{\"id\":\"e");
        push_u64(&mut self.line, self.next_event);
        self.next_event += 1;
        self.line.extend_from_slice(b"\",\"type\":\"");
        self.line.extend_from_slice(kind.as_bytes());
        self.line.extend_from_slice(b"\",\"at\":\"");
        self.timestamp(at);
        self.line.push(b'"');
    }

    /// `,"key":"value"` (the value escaped).
    fn s(&mut self, key: &str, value: &str) {
        self.key(key);
        push_str(&mut self.line, value);
    }

    /// `,"key":` then the caller writes the value.
    fn key(&mut self, key: &str) {
        self.line.extend_from_slice(b",\"");
        self.line.extend_from_slice(key.as_bytes());
        self.line.extend_from_slice(b"\":");
    }

    /// `,"key":"{prefix}{n}"`.
    fn id(&mut self, key: &str, prefix: &str, n: u64) {
        self.key(key);
        self.line.push(b'"');
        self.line.extend_from_slice(prefix.as_bytes());
        push_u64(&mut self.line, n);
        self.line.push(b'"');
    }

    /// `,"key":{"f":"v",…}` (values escaped; `None` fields left out).
    fn object(&mut self, key: &str, fields: &[(&str, Option<&str>)]) {
        self.key(key);
        let mut first = true;
        for (name, value) in fields {
            if let Some(value) = value {
                self.line.push(if first { b'{' } else { b',' });
                first = false;
                push_str(&mut self.line, name);
                self.line.push(b':');
                push_str(&mut self.line, value);
            }
        }
        self.line.push(b'}');
    }

    fn raw(&mut self, text: &str) {
        self.line.extend_from_slice(text.as_bytes());
    }

    /// Ends the line and writes it; a share of lines is kept to be written again.
    fn end(&mut self, rng: &mut Pcg64Mcg) -> std::io::Result<()> {
        self.line.extend_from_slice(b"}\n");
        self.w.write_all(&self.line)?;
        self.stats.events += 1;
        if rng.random_bool(0.004) && self.resend.len() < 64 {
            let later = rng.random_range(1..200);
            self.resend.push((self.line.clone(), later));
        }
        let mut i = 0;
        while i < self.resend.len() {
            self.resend[i].1 -= 1;
            if self.resend[i].1 == 0 {
                let (line, _) = self.resend.swap_remove(i);
                self.w.write_all(&line)?;
                self.stats.events += 1;
                self.stats.resends += 1;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    /// Writes the re-sends still waiting.
    fn finish(mut self) -> std::io::Result<Stats> {
        for (line, _) in std::mem::take(&mut self.resend) {
            self.w.write_all(&line)?;
            self.stats.events += 1;
            self.stats.resends += 1;
        }
        self.w.flush()?;
        Ok(self.stats)
    }

    /// RFC 3339 in UTC with milliseconds: `2026-11-03T08:15:27.120Z`.
    fn timestamp(&mut self, at: i64) {
        let day = at.div_euclid(DAY);
        if day != self.day {
            self.day = day;
            let (y, m, d) = parley_core::time::civil_from_days(day);
            let text = format!("{y:04}-{m:02}-{d:02}T");
            self.prefix.copy_from_slice(text.as_bytes());
        }
        self.line.extend_from_slice(&self.prefix);
        let us = at.rem_euclid(DAY);
        let (h, mi, s, ms) = (
            us / HOUR,
            us / MINUTE % 60,
            us / MICROS % 60,
            us / 1_000 % 1_000,
        );
        for (v, sep) in [(h, b':'), (mi, b':'), (s, b'.')] {
            self.line.push(b'0' + (v / 10) as u8);
            self.line.push(b'0' + (v % 10) as u8);
            self.line.push(sep);
        }
        self.line.push(b'0' + (ms / 100) as u8);
        self.line.push(b'0' + (ms / 10 % 10) as u8);
        self.line.push(b'0' + (ms % 10) as u8);
        self.line.push(b'Z');
    }
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// A JSON string (quotes, backslashes and control characters escaped).
fn push_str(buf: &mut Vec<u8>, s: &str) {
    buf.push(b'"');
    for &b in s.as_bytes() {
        match b {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            0..=0x1f => buf.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => buf.push(b),
        }
    }
    buf.push(b'"');
}

/// A value of `choices` drawn by weight.
fn pick<'a>(rng: &mut Pcg64Mcg, choices: &'a [(&'a str, u32)]) -> &'a str {
    let total: u32 = choices.iter().map(|c| c.1).sum();
    let mut x = rng.random_range(0..total);
    for (value, weight) in choices {
        if x < *weight {
            return value;
        }
        x -= weight;
    }
    choices[choices.len() - 1].0
}

fn one<'a>(rng: &mut Pcg64Mcg, choices: &'a [&'a str]) -> &'a str {
    choices[rng.random_range(0..choices.len())]
}

/// A delay in microseconds, log-normal around `median_s` seconds.
fn delay(rng: &mut Pcg64Mcg, median_s: f64, sigma: f64) -> i64 {
    let d = LogNormal::new(median_s.ln(), sigma).expect("a finite sigma");
    let s: f64 = d.sample(rng);
    ((s.min(30.0 * 86_400.0)) * MICROS as f64) as i64 + rng.random_range(0..1_000) * 1_000
}

/// The generator's state.
struct Sim<'w> {
    cfg: Config,
    rng: Pcg64Mcg,
    out: Out<'w>,
    agents: Vec<Agent>,
    supervisor: String,
    contacts: Vec<Contact>,
    /// Contacts drawn from the pool so far (ids `c0` … `c{n-1}`).
    next_contact: u64,
    next_conversation: u64,
    next_message: u64,
    next_broadcast: u64,
    /// The first instant of the period, the instant after it, and when the channel and
    /// the agent are deleted.
    start: i64,
    end: i64,
    channel_deleted_at: i64,
}

/// Writes the events `cfg` describes to `out`, as NDJSON.
pub fn simulate(cfg: &Config, out: &mut dyn Write) -> Result<Stats, SimError> {
    let zone = TimeZone::get(&cfg.timezone).map_err(|_| SimError::Zone(cfg.timezone.clone()))?;
    if cfg.days == 0 || cfg.contacts == 0 || cfg.agents < 3 {
        return Err(SimError::Config(
            "--days and --contacts must be at least 1, --agents at least 3".into(),
        ));
    }
    let local_start = |date: Date| -> Result<i64, SimError> {
        let z = date
            .to_zoned_datetime(zone.clone())
            .and_then(|z| z.start_of_day())
            .map_err(|e| SimError::Config(e.to_string()))?;
        Ok(z.timestamp().as_microsecond())
    };
    let first = cfg
        .end
        .checked_sub(jiff::Span::new().days(i64::from(cfg.days) - 1))
        .map_err(|e| SimError::Config(e.to_string()))?;
    let after = cfg
        .end
        .tomorrow()
        .map_err(|e| SimError::Config(e.to_string()))?;
    let (start, mut end) = (local_start(first)?, local_start(after)?);
    if let Some(until) = cfg.until {
        end = end.min(until.as_microsecond());
    }
    let mut sim = Sim {
        cfg: cfg.clone(),
        rng: Pcg64Mcg::seed_from_u64(cfg.seed),
        out: Out {
            w: std::io::BufWriter::with_capacity(1 << 20, out),
            line: Vec::with_capacity(1024),
            next_event: 1,
            stats: Stats::default(),
            resend: Vec::new(),
            day: i64::MIN,
            prefix: [0; 11],
        },
        agents: Vec::new(),
        supervisor: "u-lead".into(),
        contacts: vec![Contact::default(); cfg.contacts as usize],
        next_contact: 0,
        next_conversation: 1,
        next_message: 1,
        next_broadcast: 1,
        start,
        end,
        channel_deleted_at: start + (end - start) / 2,
    };
    sim.directory()?;
    let mut date = first;
    let mut carry = 0.0;
    let weights: f64 = (0..cfg.days)
        .map(|i| {
            let d = first
                .checked_add(jiff::Span::new().days(i64::from(i)))
                .expect("a date");
            WEEKDAYS[d.weekday().to_monday_zero_offset() as usize]
        })
        .sum();
    for _ in 0..cfg.days {
        let day_start = local_start(date)?;
        let next = date
            .tomorrow()
            .map_err(|e| SimError::Config(e.to_string()))?;
        let day_end = local_start(next)?;
        let weekday = date.weekday().to_monday_zero_offset() as usize;
        let expected = cfg.conversations as f64 * WEEKDAYS[weekday] / weights + carry;
        let n = expected.floor() as u64;
        carry = expected - n as f64;
        sim.day(day_start, day_end, weekday, n)?;
        date = next;
    }
    Ok(sim.out.finish()?)
}

impl Sim<'_> {
    /// Teams, agents, the supervisor and channels, the day before the period; the
    /// deleted channel and agent mid-period.
    fn directory(&mut self) -> Result<(), SimError> {
        let at = self.start - DAY;
        for (id, name) in TEAMS {
            self.out.begin("team.upserted", at);
            self.out
                .object("team", &[("id", Some(id)), ("name", Some(name))]);
            self.out.end(&mut self.rng)?;
        }
        // Shifts: early 7-15, day 9-17, late 14-22; every fifth agent also works weekends.
        let shifts = [(7, 15), (9, 17), (14, 22)];
        for i in 0..self.cfg.agents as usize {
            let id = format!("u{:02}", i + 1);
            let name = AGENT_NAMES
                .get(i)
                .map_or_else(|| format!("Agente {}", i + 1), |n| (*n).to_string());
            let team = TEAMS[i % TEAMS.len()].0;
            self.user(at, &id, &name, Some(team))?;
            let (from, to) = shifts[i % shifts.len()];
            self.agents.push(Agent {
                id,
                from,
                to,
                weekends: i % 5 == 4,
                deleted_at: i64::MAX,
            });
        }
        let lead = self.supervisor.clone();
        self.user(at, &lead, "Marta Jefa de equipo", Some("t-support"))?;
        for (id, name, kind, _) in CHANNELS {
            self.out.begin("channel.upserted", at);
            let fields = [
                ("id", Some(*id)),
                ("name", Some(*name)),
                ("kind", Some(*kind)),
            ];
            self.out.object("channel", &fields);
            self.out.end(&mut self.rng)?;
        }
        // Mid-period: the old WhatsApp number is retired; the second agent leaves a
        // little later.
        self.out.begin("channel.deleted", self.channel_deleted_at);
        self.out.s("channel_id", CHANNELS[DELETED_CHANNEL].0);
        self.out.end(&mut self.rng)?;
        let gone = self.channel_deleted_at + 7 * DAY;
        self.agents[1].deleted_at = gone;
        let id = self.agents[1].id.clone();
        self.out.begin("user.deleted", gone);
        self.out.s("user_id", &id);
        self.out.end(&mut self.rng)?;
        Ok(())
    }

    fn user(&mut self, at: i64, id: &str, name: &str, team: Option<&str>) -> Result<(), SimError> {
        self.out.begin("user.upserted", at);
        let fields = [("id", Some(id)), ("name", Some(name)), ("team_id", team)];
        self.out.object("user", &fields);
        self.out.end(&mut self.rng)?;
        Ok(())
    }

    /// The agents on shift at `at` (local `hour` of `weekday`), still in the directory.
    fn on_shift(&self, at: i64, hour: u32, weekday: usize) -> Vec<u16> {
        self.agents
            .iter()
            .enumerate()
            .filter(|(_, a)| {
                a.deleted_at > at && hour >= a.from && hour < a.to && (weekday < 5 || a.weekends)
            })
            .map(|(i, _)| i as u16)
            .collect()
    }

    /// One local day: its conversations, and a broadcast on Tuesdays and Thursdays.
    fn day(
        &mut self,
        day_start: i64,
        day_end: i64,
        weekday: usize,
        n: u64,
    ) -> Result<(), SimError> {
        let length = day_end - day_start;
        let hour_weight = |h: usize| {
            let monday_morning = weekday == 0 && (8..13).contains(&h);
            HOURS[h] * if monday_morning { 1.4 } else { 1.0 }
        };
        let total: f64 = (0..24).map(hour_weight).sum();
        let mut opens: Vec<i64> = (0..n)
            .map(|_| {
                let mut x = self.rng.random::<f64>() * total;
                let mut h = 0;
                while h < 23 && x >= hour_weight(h) {
                    x -= hour_weight(h);
                    h += 1;
                }
                let within = self.rng.random_range(0..HOUR);
                // Local hours are a 24th of the local day (23 or 25 real hours on the
                // days the clocks change).
                (day_start + h as i64 * (length / 24) + within).min(day_end - 1)
            })
            .collect();
        opens.sort_unstable();
        // The load of each hour: conversations per agent on shift.
        let mut per_hour = [0u32; 24];
        for at in &opens {
            per_hour[(((at - day_start) * 24) / length).clamp(0, 23) as usize] += 1;
        }
        if weekday == 1 || weekday == 3 {
            self.broadcast(day_start + 10 * (length / 24))?;
        }
        for at in opens {
            let hour = (((at - day_start) * 24) / length).clamp(0, 23) as u32;
            let shift = self.on_shift(at, hour, weekday);
            let load = f64::from(per_hour[hour as usize]) / shift.len().max(1) as f64;
            self.conversation(at, &shift, load)?;
        }
        Ok(())
    }

    /// A contact for a conversation opening at `at`: a returning one (free, not gone)
    /// about a third of the time once there are some, else the next of the pool.
    fn contact_for(&mut self, at: i64) -> Option<(u64, bool)> {
        let returning_share = if self.next_contact >= self.cfg.contacts {
            1.0
        } else {
            0.35
        };
        if self.next_contact > 0 && self.rng.random_bool(returning_share) {
            for _ in 0..8 {
                let c = self.rng.random_range(0..self.next_contact);
                let state = self.contacts[c as usize];
                if !state.gone && state.busy_until < at {
                    return Some((c, false));
                }
            }
        }
        if self.next_contact < self.cfg.contacts {
            self.next_contact += 1;
            return Some((self.next_contact - 1, true));
        }
        None
    }

    fn contact_name(&mut self) -> String {
        let first = one(&mut self.rng, FIRST_NAMES);
        let last = one(&mut self.rng, LAST_NAMES);
        format!("{first} {last}")
    }

    /// One conversation opening at `at`, with all that follows it inside the period.
    fn conversation(&mut self, at: i64, shift: &[u16], load: f64) -> Result<(), SimError> {
        if at >= self.end {
            return Ok(());
        }
        let Some((c, new)) = self.contact_for(at) else {
            return Ok(());
        };
        // The deleted channel has no new conversations after its deletion.
        let weights: Vec<(&str, u32)> = CHANNELS
            .iter()
            .enumerate()
            .map(|(i, ch)| {
                let gone = i == DELETED_CHANNEL && at >= self.channel_deleted_at;
                (ch.0, if gone { 0 } else { ch.3 })
            })
            .collect();
        let id = pick(&mut self.rng, &weights);
        let channel = CHANNELS
            .iter()
            .position(|ch| ch.0 == id)
            .expect("a channel");
        let (channel_id, kind) = (CHANNELS[channel].0, CHANNELS[channel].2);
        self.out.stats.conversations += 1;
        let source = pick(&mut self.rng, OPEN_SOURCES);
        let any_agent = |sim: &mut Self| -> u16 {
            if shift.is_empty() {
                // Nobody on shift: an agent still in the directory.
                let live: Vec<u16> = (0..sim.agents.len() as u16)
                    .filter(|a| sim.agents[*a as usize].deleted_at > at)
                    .collect();
                live[sim.rng.random_range(0..live.len())]
            } else {
                shift[sim.rng.random_range(0..shift.len())]
            }
        };
        if new {
            let added_at = at - self.rng.random_range(1..120) * MICROS;
            let name = self.contact_name();
            let contact_source = if source == "click_to_chat_ad" {
                "click_to_chat_ad"
            } else {
                pick(&mut self.rng, CONTACT_SOURCES)
            };
            self.out.begin("contact.added", added_at);
            let id = format!("c{c}");
            self.out
                .object("contact", &[("id", Some(&id)), ("name", Some(&name))]);
            self.out.s("source", contact_source);
            if contact_source == "user" {
                let a = any_agent(self);
                let id = self.agents[a as usize].id.clone();
                self.out.s("user_id", &id);
            }
            self.out.end(&mut self.rng)?;
            self.contacts[c as usize].seen = true;
        } else if self.rng.random_bool(0.05) {
            let name = self.contact_name();
            self.out.begin("contact.updated", at - MINUTE);
            let id = format!("c{c}");
            self.out
                .object("contact", &[("id", Some(&id)), ("name", Some(&name))]);
            self.out.end(&mut self.rng)?;
        }
        let v = self.next_conversation;
        self.next_conversation += 1;
        self.out.begin("conversation.opened", at);
        self.out.id("conversation_id", "v", v);
        self.out.id("contact_id", "c", c);
        self.out.s("source", source);
        self.out.s("channel_id", channel_id);
        let business_opened = matches!(
            source,
            "user" | "workflow" | "developer_api" | "zapier" | "make"
        );
        let opener = any_agent(self);
        if source == "user" {
            let id = self.agents[opener as usize].id.clone();
            self.out.s("user_id", &id);
        }
        self.out.end(&mut self.rng)?;

        let mut t = at;
        // Who answers: a returning contact may keep its assignee (no assignment
        // activity); else a workflow, the supervisor or a bot assigns someone on shift.
        let kept = self.contacts[c as usize].assignee;
        let keeps = kept != 0
            && self.agents[kept as usize - 1].deleted_at > at
            && self.rng.random_bool(0.6);
        let mut assignee = if keeps { kept - 1 } else { any_agent(self) };
        if business_opened {
            let from = if source == "user" { "user" } else { source };
            let text = one(&mut self.rng, REPLIES);
            t += self.rng.random_range(1..30) * MICROS;
            let user = (from == "user").then_some(opener);
            self.sent(t, c, channel, kind, from, user, "session", None, text)?;
        } else {
            let text = one(&mut self.rng, INCOMING);
            self.received(at, c, channel_id, text)?;
            // An auto-reply from a bot or a workflow.
            if self.rng.random_bool(0.7) {
                let from = if self.rng.random_bool(0.75) {
                    "bot"
                } else {
                    "workflow"
                };
                t += self.rng.random_range(1..8) * MICROS;
                self.sent(
                    t,
                    c,
                    channel,
                    kind,
                    from,
                    None,
                    "session",
                    None,
                    "¡Hola! Un agente te atenderá enseguida.",
                )?;
            }
        }
        if !keeps {
            let how = self.rng.random_range(0..100);
            let (source, by) = match how {
                0..=59 => ("workflow", None),
                60..=86 => ("user", Some(self.supervisor.clone())),
                87..=93 => ("bot", None),
                94..=96 => ("developer_api", None),
                97 => ("zapier", None),
                98 => ("make", None),
                _ => ("contact_import", None),
            };
            t += if source == "user" {
                delay(&mut self.rng, 120.0, 1.0)
            } else {
                self.rng.random_range(5..90) * MICROS
            };
            self.assign(t, c, Some(assignee), source, by.as_deref())?;
        }
        // The exchange: the agent answers after a delay that grows with the load and
        // outside the shift; the contact may write again, a few rounds.
        let median = if shift.is_empty() {
            3.0 * 3_600.0
        } else {
            45.0 * (1.0 + load * 0.6)
        };
        let rounds = 1 + (0..8).take_while(|_| self.rng.random_bool(0.55)).count();
        for round in 0..rounds {
            if round == 1 && self.rng.random_bool(0.08) {
                // Reassigned by the supervisor to someone else on shift.
                let other = any_agent(self);
                if other != assignee {
                    t += delay(&mut self.rng, 300.0, 0.8);
                    let lead = self.supervisor.clone();
                    self.assign(t, c, Some(other), "user", Some(&lead))?;
                    assignee = other;
                }
            }
            t += delay(&mut self.rng, median, 1.1);
            if t >= self.end {
                return self.left_open(c, assignee);
            }
            let text = one(&mut self.rng, REPLIES);
            if self.agents[assignee as usize].deleted_at <= t {
                assignee = any_agent(self);
            }
            self.sent(
                t,
                c,
                channel,
                kind,
                "user",
                Some(assignee),
                "session",
                None,
                text,
            )?;
            if round + 1 < rounds {
                t += delay(&mut self.rng, 150.0, 1.2);
                if t >= self.end {
                    return self.left_open(c, assignee);
                }
                let text = one(&mut self.rng, INCOMING);
                self.received(t, c, channel_id, text)?;
            }
        }
        // A tagged follow-up on Messenger, a day later, outside the 24-hour window.
        if kind == "messenger" && self.rng.random_bool(0.3) {
            t += 25 * HOUR + self.rng.random_range(0..HOUR);
            if t >= self.end {
                return self.left_open(c, assignee);
            }
            let tag = one(&mut self.rng, TAGS);
            self.sent(
                t,
                c,
                channel,
                kind,
                "user",
                Some(assignee),
                "facebook_message_tag",
                Some(tag),
                "Tu pedido ha salido del almacén",
            )?;
        }
        t += delay(&mut self.rng, 900.0, 1.0);
        if t >= self.end {
            return self.left_open(c, assignee);
        }
        // Ended by a merge or a deletion now and then, else closed.
        let ending = self.rng.random_range(0..1_000);
        if ending < 4 && self.next_contact > 1 {
            let lead = self.supervisor.clone();
            self.out.begin("conversation.closed", t);
            self.out.id("conversation_id", "v", v);
            self.out.s(
                "source",
                if ending < 2 {
                    "contact_merged"
                } else {
                    "contact_deleted"
                },
            );
            self.out.end(&mut self.rng)?;
            if ending < 2 {
                let into = loop {
                    let other = self.rng.random_range(0..self.next_contact);
                    if other != c {
                        break other;
                    }
                };
                self.out.begin("contact.merged", t);
                self.out.id("primary_contact_id", "c", into);
                self.out.id("merged_contact_id", "c", c);
                self.out.s("user_id", &lead);
                self.out.end(&mut self.rng)?;
            } else {
                self.out.begin("contact.deleted", t);
                self.out.id("contact_id", "c", c);
                self.out.s("user_id", &lead);
                self.out.end(&mut self.rng)?;
            }
            self.contacts[c as usize] = Contact {
                seen: true,
                gone: true,
                busy_until: t,
                assignee: 0,
            };
            return Ok(());
        }
        let close = pick(&mut self.rng, CLOSE_SOURCES);
        self.out.begin("conversation.closed", t);
        self.out.id("conversation_id", "v", v);
        self.out.s("source", close);
        if close == "user" {
            let id = self.agents[assignee as usize].id.clone();
            self.out.s("user_id", &id);
        }
        let category = pick(&mut self.rng, CATEGORIES);
        if !category.is_empty() {
            self.out.s("category", category);
        }
        if self.rng.random_bool(0.3) {
            let summary = one(&mut self.rng, SUMMARIES);
            self.out.s("summary", summary);
        }
        self.out.end(&mut self.rng)?;
        // Some assignees are released at the close; the others stay with the contact.
        let mut keep = assignee + 1;
        if self.rng.random_bool(0.3) {
            t += self.rng.random_range(1..60) * MICROS;
            self.assign(t, c, None, "workflow", None)?;
            keep = 0;
        }
        self.contacts[c as usize].busy_until = t;
        self.contacts[c as usize].assignee = keep;
        Ok(())
    }

    /// The period ends with the conversation still open.
    fn left_open(&mut self, c: u64, assignee: u16) -> Result<(), SimError> {
        let contact = &mut self.contacts[c as usize];
        contact.busy_until = i64::MAX;
        contact.assignee = assignee + 1;
        Ok(())
    }

    fn assign(
        &mut self,
        at: i64,
        c: u64,
        to: Option<u16>,
        source: &str,
        by: Option<&str>,
    ) -> Result<(), SimError> {
        self.out.begin("contact.assigned", at);
        self.out.id("contact_id", "c", c);
        self.out.key("assignee_id");
        match to {
            Some(a) => {
                let id = self.agents[a as usize].id.clone();
                push_str(&mut self.out.line, &id);
            }
            None => self.out.raw("null"),
        }
        self.out.s("source", source);
        if let Some(by) = by {
            self.out.s("by_user_id", by);
        }
        self.out.end(&mut self.rng)?;
        if let Some(a) = to {
            self.contacts[c as usize].assignee = a + 1;
        }
        Ok(())
    }

    fn received(&mut self, at: i64, c: u64, channel_id: &str, text: &str) -> Result<(), SimError> {
        let m = self.next_message;
        self.next_message += 1;
        self.out.stats.messages += 1;
        self.out.begin("message.received", at);
        self.out.id("message_id", "m", m);
        self.out.id("contact_id", "c", c);
        self.out.s("channel_id", channel_id);
        self.content("text", Some(text));
        self.out.end(&mut self.rng)?;
        Ok(())
    }

    fn content(&mut self, kind: &str, text: Option<&str>) {
        self.out
            .object("content", &[("type", Some(kind)), ("text", text)]);
    }

    /// An outgoing message and its receipts: delivered and read after a while, now and
    /// then failed; some receipts are written before their message, a few read
    /// receipts come after the 30 days that count.
    #[allow(clippy::too_many_arguments)]
    fn sent(
        &mut self,
        at: i64,
        c: u64,
        channel: usize,
        kind: &str,
        source: &str,
        user: Option<u16>,
        message_type: &str,
        subtype: Option<&str>,
        text: &str,
    ) -> Result<(), SimError> {
        let m = self.next_message;
        self.next_message += 1;
        self.out.stats.messages += 1;
        let early = self.rng.random_bool(0.01);
        let mut receipts: Vec<(i64, &str, Option<&str>)> = Vec::new();
        if self.rng.random_bool(0.015) {
            let errors = if kind == "whatsapp" {
                WA_ERRORS
            } else {
                CHANNEL_ERRORS
            };
            receipts.push((
                at + self.rng.random_range(1..20) * MICROS,
                "failed",
                Some(one(&mut self.rng, errors)),
            ));
        } else if self.rng.random_bool(0.97) {
            let delivered = at + self.rng.random_range(1..15) * MICROS;
            receipts.push((delivered, "delivered", None));
            if self.rng.random_bool(0.8) {
                // Now and then read after the 30 days of tracking (it does not count).
                let read = if self.rng.random_bool(0.01) {
                    at + 30 * DAY + self.rng.random_range(HOUR..3 * DAY)
                } else {
                    delivered + delay(&mut self.rng, 90.0, 1.3)
                };
                receipts.push((read, "read", None));
            }
        }
        let message = |sim: &mut Self| -> Result<(), SimError> {
            sim.out.begin("message.sent", at);
            sim.out.id("message_id", "m", m);
            sim.out.id("contact_id", "c", c);
            sim.out.s("channel_id", CHANNELS[channel].0);
            sim.out.s("source", source);
            if let Some(u) = user {
                let id = sim.agents[u as usize].id.clone();
                sim.out.s("user_id", &id);
            }
            sim.out.s("message_type", message_type);
            if let Some(subtype) = subtype {
                sim.out.s("subtype", subtype);
            }
            sim.content("text", Some(text));
            sim.out.end(&mut sim.rng)?;
            Ok(())
        };
        if !early {
            message(self)?;
        }
        for (rat, status, error) in receipts {
            if rat >= self.end {
                continue;
            }
            self.status(rat, m, status, error)?;
        }
        if early {
            message(self)?;
        }
        Ok(())
    }

    fn status(
        &mut self,
        at: i64,
        m: u64,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), SimError> {
        self.out.begin("message.status", at);
        self.out.id("message_id", "m", m);
        self.out.s("status", status);
        if let Some(error) = error {
            self.out.s("error", error);
        }
        self.out.end(&mut self.rng)?;
        Ok(())
    }

    /// A WhatsApp template broadcast at `at` to a share of the contacts seen so far,
    /// with its funnel: sent, delivered, read, and some failed.
    fn broadcast(&mut self, at: i64) -> Result<(), SimError> {
        if self.next_contact == 0 || at >= self.end || at < self.start {
            return Ok(());
        }
        let b = self.next_broadcast;
        self.next_broadcast += 1;
        let (template, name) = TEMPLATES[(b as usize) % TEMPLATES.len()];
        let recipients = (self.next_contact / 25).clamp(1, 5_000);
        let broadcast_name = format!("{name} #{b}");
        for k in 0..recipients {
            let c = self.rng.random_range(0..self.next_contact);
            if self.contacts[c as usize].gone {
                continue;
            }
            let m = self.next_message;
            self.next_message += 1;
            self.out.stats.messages += 1;
            let t = at + (k as i64) * 50_000;
            self.out.begin("message.sent", t);
            self.out.id("message_id", "m", m);
            self.out.id("contact_id", "c", c);
            self.out.s("channel_id", CHANNELS[BROADCAST_CHANNEL].0);
            self.out.s("source", "broadcast");
            self.out.s("message_type", "whatsapp_template");
            self.out.s("subtype", template);
            let id = format!("b{b}");
            let fields = [("id", Some(id.as_str())), ("name", Some(&broadcast_name))];
            self.out.object("broadcast", &fields);
            self.content("template", Some(name));
            self.out.end(&mut self.rng)?;
            if self.rng.random_bool(0.5) {
                self.status(t + MICROS, m, "sent", None)?;
            }
            if self.rng.random_bool(0.06) {
                let error = one(&mut self.rng, WA_ERRORS);
                let failed = t + self.rng.random_range(2..60) * MICROS;
                self.status(failed, m, "failed", Some(error))?;
            } else if self.rng.random_bool(0.93) {
                let delivered = t + self.rng.random_range(2..120) * MICROS;
                self.status(delivered, m, "delivered", None)?;
                if self.rng.random_bool(0.55) {
                    let read = delivered + delay(&mut self.rng, 3_600.0, 1.4);
                    if read < self.end {
                        self.status(read, m, "read", None)?;
                    }
                }
            }
        }
        Ok(())
    }
}
