//! The directory of SPEC §2.1: display names of users, teams and channels from the final
//! state, and each user's team over time.

use std::collections::HashMap;

use crate::event::{Body, Event};
use crate::time::Instant;

/// Final-state display names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    users: HashMap<String, String>,
    teams: HashMap<String, String>,
    channels: HashMap<String, String>,
    deleted_channels: Vec<String>,
}

/// A span of time during which a user belonged to a team: [from, to).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSpan {
    pub user_id: String,
    pub from: Instant,
    pub to: Instant,
    pub team_id: String,
}

fn sorted(events: &[Event]) -> Vec<&Event> {
    let mut v: Vec<&Event> = events.iter().filter(|e| e.body.is_directory()).collect();
    v.sort_by(|a, b| crate::derive::sort_key(a).cmp(&crate::derive::sort_key(b)));
    v
}

impl Directory {
    /// Builds the final state from the workspace's directory events, in any order.
    pub fn from_events(events: &[Event]) -> Directory {
        let mut d = Directory::default();
        let mut deleted_users: HashMap<String, bool> = HashMap::new();
        let mut channel_deleted: HashMap<String, bool> = HashMap::new();
        for e in sorted(events) {
            match &e.body {
                Body::UserUpserted { user_id, name, .. } => {
                    d.users.insert(user_id.clone(), name.clone());
                    deleted_users.insert(user_id.clone(), false);
                }
                Body::UserDeleted { user_id } => {
                    deleted_users.insert(user_id.clone(), true);
                }
                Body::TeamUpserted { team_id, name } => {
                    d.teams.insert(team_id.clone(), name.clone());
                }
                Body::ChannelUpserted {
                    channel_id, name, ..
                } => {
                    d.channels.insert(channel_id.clone(), name.clone());
                    channel_deleted.insert(channel_id.clone(), false);
                }
                Body::ChannelDeleted { channel_id } => {
                    channel_deleted.insert(channel_id.clone(), true);
                }
                _ => {}
            }
        }
        // A user whose last directory event is a delete is shown by id everywhere.
        for (id, deleted) in deleted_users {
            if deleted {
                d.users.remove(&id);
            }
        }
        d.deleted_channels = channel_deleted
            .into_iter()
            .filter(|(_, del)| *del)
            .map(|(id, _)| id)
            .collect();
        d.deleted_channels.sort();
        d
    }

    pub fn user(&self, id: &str) -> String {
        self.user_ref(id).to_string()
    }

    pub fn team(&self, id: &str) -> String {
        self.team_ref(id).to_string()
    }

    pub fn channel(&self, id: &str) -> String {
        self.channel_ref(id).to_string()
    }

    /// A user's display name, borrowed: its name, or its bare id.
    pub fn user_ref<'a>(&'a self, id: &'a str) -> &'a str {
        self.users.get(id).map_or(id, String::as_str)
    }

    pub fn team_ref<'a>(&'a self, id: &'a str) -> &'a str {
        self.teams.get(id).map_or(id, String::as_str)
    }

    pub fn channel_ref<'a>(&'a self, id: &'a str) -> &'a str {
        self.channels.get(id).map_or(id, String::as_str)
    }

    /// Users offered as filter values: every user not deleted, by name.
    pub fn offered_users(&self) -> Vec<(String, String)> {
        by_name(&self.users)
    }

    /// Teams offered as filter values, by name.
    pub fn offered_teams(&self) -> Vec<(String, String)> {
        by_name(&self.teams)
    }

    /// Channels offered as filter values: every named channel not deleted.
    pub fn offered_channels(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .channels
            .iter()
            .filter(|(id, _)| !self.deleted_channels.contains(id))
            .map(|(id, name)| (id.clone(), name.clone()))
            .collect();
        v.sort();
        v
    }
}

/// `(id, name)` pairs sorted by name, then id.
fn by_name(names: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut v: Vec<_> = names
        .iter()
        .map(|(id, name)| (id.clone(), name.clone()))
        .collect();
    v.sort_by(|a, b| (&a.1, &a.0).cmp(&(&b.1, &b.0)));
    v
}

/// Each user's team over time: the `team_id` of its last upsert at or before an instant.
pub fn team_spans(events: &[Event]) -> Vec<TeamSpan> {
    let mut per_user: HashMap<&str, Vec<(Instant, Option<&str>)>> = HashMap::new();
    for e in sorted(events) {
        if let Body::UserUpserted {
            user_id, team_id, ..
        } = &e.body
        {
            per_user
                .entry(user_id)
                .or_default()
                .push((e.at, team_id.as_deref()));
        }
    }
    let mut out = Vec::new();
    for (user, ups) in per_user {
        for (i, (from, team)) in ups.iter().enumerate() {
            let to = ups.get(i + 1).map_or(Instant(i64::MAX), |n| n.0);
            if let (Some(team), true) = (team, *from < to) {
                out.push(TeamSpan {
                    user_id: user.to_string(),
                    from: *from,
                    to,
                    team_id: team.to_string(),
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.user_id, a.from).cmp(&(&b.user_id, b.from)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::parse_event;

    fn events(lines: &[&str]) -> Vec<Event> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| parse_event(l.as_bytes(), i + 1, i).unwrap())
            .collect()
    }

    #[test]
    fn s1_deleted_channels_keep_their_name_but_are_not_offered() {
        let d = Directory::from_events(&events(&[
            r#"{"id":"1","type":"channel.upserted","at":"2026-01-01T00:00:00Z","channel":{"id":"wa","name":"WhatsApp","kind":"whatsapp"}}"#,
            r#"{"id":"2","type":"channel.upserted","at":"2026-01-01T00:00:00Z","channel":{"id":"tg","name":"Telegram","kind":"telegram"}}"#,
            r#"{"id":"3","type":"channel.deleted","at":"2026-01-02T00:00:00Z","channel_id":"wa"}"#,
        ]));
        assert_eq!(d.channel("wa"), "WhatsApp");
        assert_eq!(d.channel("sms"), "sms", "never upserted: its bare id");
        assert_eq!(
            d.offered_channels(),
            [("tg".to_string(), "Telegram".to_string())]
        );
    }

    #[test]
    fn s2_1_names_and_teams_follow_application_order() {
        let evs = events(&[
            r#"{"id":"b","type":"user.upserted","at":"2026-01-01T00:00:00Z","user":{"id":"u","name":"Second","team_id":"t2"}}"#,
            r#"{"id":"a","type":"user.upserted","at":"2026-01-01T00:00:00Z","user":{"id":"u","name":"First","team_id":"t1"}}"#,
            r#"{"id":"c","type":"user.deleted","at":"2026-01-03T00:00:00Z","user_id":"u"}"#,
            r#"{"id":"d","type":"team.upserted","at":"2026-01-01T00:00:00Z","team":{"id":"t2","name":"Support"}}"#,
        ]);
        let d = Directory::from_events(&evs);
        assert_eq!(d.user("u"), "u", "the last directory event is a delete");
        assert!(
            d.offered_users().is_empty(),
            "a deleted user is not offered"
        );
        assert_eq!(
            d.offered_teams(),
            [("t2".to_string(), "Support".to_string())]
        );
        assert_eq!(d.team("t2"), "Support");
        let spans = team_spans(&evs);
        assert_eq!(
            spans.len(),
            1,
            "the same-instant upsert with the lower id is overridden"
        );
        assert_eq!(spans[0].team_id, "t2");
        assert_eq!(
            spans[0].to,
            Instant(i64::MAX),
            "deleting a user does not change its team"
        );
    }
}
