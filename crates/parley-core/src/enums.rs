//! The enumerations of SPEC §2.2: each with its wire value and its English label.

/// Declares an enumeration with its wire values and English labels, in SPEC order.
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $wire:literal / $label:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in the order SPEC.md lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value as it travels on the wire.
            pub fn wire(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// The English label shown in CSV and on screen.
            pub fn label(self) -> &'static str {
                match self { $($name::$variant => $label),+ }
            }

            /// Parses a wire value; `None` when it is outside the enumeration.
            pub fn from_wire(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }

            /// The wire values joined for error messages.
            pub fn expected() -> String {
                Self::ALL.iter().map(|v| v.wire()).collect::<Vec<_>>().join(", ")
            }
        }
    };
}

wire_enum!(
    /// Where a contact came from (`contact.added`).
    ContactSource {
        User = "user" / "User",
        ContactImport = "contact_import" / "Contact import",
        DeveloperApi = "developer_api" / "Developer API",
        IncomingMessage = "incoming_message" / "Incoming message",
        EchoMessage = "echo_message" / "Echo message",
        Zapier = "zapier" / "Zapier",
        Make = "make" / "Make",
        ClickToChatAd = "click_to_chat_ad" / "Click-to-chat ad",
    }
);

wire_enum!(
    /// Who opened a conversation.
    OpenSource {
        User = "user" / "User",
        Contact = "contact" / "Contact",
        Workflow = "workflow" / "Workflow",
        DeveloperApi = "developer_api" / "Developer API",
        Zapier = "zapier" / "Zapier",
        Make = "make" / "Make",
        ClickToChatAd = "click_to_chat_ad" / "Click-to-chat ad",
    }
);

wire_enum!(
    /// Who closed a conversation.
    CloseSource {
        User = "user" / "User",
        Bot = "bot" / "Bot",
        Workflow = "workflow" / "Workflow",
        DeveloperApi = "developer_api" / "Developer API",
        Zapier = "zapier" / "Zapier",
        Make = "make" / "Make",
        Blocked = "blocked" / "Blocked",
        ContactMerged = "contact_merged" / "Contact merged",
        ContactDeleted = "contact_deleted" / "Contact deleted",
    }
);

impl CloseSource {
    /// Closes by merge or delete end a conversation but are never counted (SPEC §3.4).
    pub fn is_counted(self) -> bool {
        !matches!(
            self,
            CloseSource::ContactMerged | CloseSource::ContactDeleted
        )
    }
}

wire_enum!(
    /// Who made an assignment.
    AssignSource {
        DeveloperApi = "developer_api" / "Developer API",
        Workflow = "workflow" / "Workflow",
        Bot = "bot" / "Bot",
        Zapier = "zapier" / "Zapier",
        Make = "make" / "Make",
        User = "user" / "User",
        ContactImport = "contact_import" / "Contact import",
    }
);

wire_enum!(
    /// Who sent an outgoing message.
    MessageSource {
        User = "user" / "User",
        Bot = "bot" / "Bot",
        Broadcast = "broadcast" / "Broadcast",
        Workflow = "workflow" / "Workflow",
        DeveloperApi = "developer_api" / "Developer API",
        Zapier = "zapier" / "Zapier",
        Make = "make" / "Make",
        EchoMessage = "echo_message" / "Echo message",
    }
);

wire_enum!(
    /// The kind of an outgoing message.
    MessageType {
        Session = "session" / "Session",
        FacebookMessageTag = "facebook_message_tag" / "Facebook message tag",
        WhatsappTemplate = "whatsapp_template" / "WhatsApp template",
    }
);

wire_enum!(
    /// A delivery receipt's status, and a message's final delivery status.
    DeliveryStatus {
        Sent = "sent" / "Sent",
        Delivered = "delivered" / "Delivered",
        Read = "read" / "Read",
        Failed = "failed" / "Failed",
    }
);

wire_enum!(
    /// Whether a conversation is its contact's first.
    ContactType {
        New = "new" / "New",
        Returning = "returning" / "Returning",
    }
);

wire_enum!(
    /// The type of a message's content.
    ContentType {
        Text = "text" / "Text",
        Image = "image" / "Image",
        Video = "video" / "Video",
        Audio = "audio" / "Audio",
        File = "file" / "File",
        Location = "location" / "Location",
        Sticker = "sticker" / "Sticker",
        Template = "template" / "Template",
        Other = "other" / "Other",
    }
);

wire_enum!(
    /// The kind of a connected channel.
    ChannelKind {
        Whatsapp = "whatsapp" / "WhatsApp",
        Messenger = "messenger" / "Messenger",
        Instagram = "instagram" / "Instagram",
        Telegram = "telegram" / "Telegram",
        Line = "line" / "LINE",
        Viber = "viber" / "Viber",
        Webchat = "webchat" / "Web chat",
        Email = "email" / "Email",
        Sms = "sms" / "SMS",
        GoogleBusiness = "google_business" / "Google Business",
        Tiktok = "tiktok" / "TikTok",
        Custom = "custom" / "Custom",
    }
);

/// The label of a wire value of any enumeration parley shows, for CSV and screens.
/// Values outside every enumeration (ids, names) are returned unchanged by the caller.
pub fn label_of_source(wire: &str) -> Option<&'static str> {
    ContactSource::from_wire(wire)
        .map(|v| v.label())
        .or_else(|| MessageSource::from_wire(wire).map(|v| v.label()))
        .or_else(|| OpenSource::from_wire(wire).map(|v| v.label()))
        .or_else(|| CloseSource::from_wire(wire).map(|v| v.label()))
        .or_else(|| AssignSource::from_wire(wire).map(|v| v.label()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_values_round_trip() {
        for v in MessageSource::ALL {
            assert_eq!(MessageSource::from_wire(v.wire()), Some(*v));
        }
        assert_eq!(ContactSource::ClickToChatAd.label(), "Click-to-chat ad");
        assert_eq!(MessageType::WhatsappTemplate.label(), "WhatsApp template");
        assert_eq!(CloseSource::from_wire("nope"), None);
    }

    #[test]
    fn merge_and_delete_closes_are_not_counted() {
        assert!(!CloseSource::ContactMerged.is_counted());
        assert!(!CloseSource::ContactDeleted.is_counted());
        assert!(CloseSource::Blocked.is_counted());
    }
}
