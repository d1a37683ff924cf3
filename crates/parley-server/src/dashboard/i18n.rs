//! The dashboard's three languages: every label, enumeration, message, day and month
//! name and number format in English, Spanish and French.
//!
//! Two kinds of text: the page's own words (`Ui`, one struct per language, so that a
//! missing translation does not compile) and the domain's terms (`TERMS`: reports,
//! components, filters, logs, columns and enumeration values, keyed as SPEC.md names
//! them, each with its three translations; a test checks that every term SPEC.md has
//! is there). Preset labels follow the source documents' wording in each language.
//! Numbers are formatted here rather than with ICU data, whose crates would double the
//! server's dependencies for three locales: English groups by `,` with a `.` decimal,
//! Spanish by `.` with a `,` decimal, French by a narrow no-break space with a `,`
//! decimal. Spanish groups four-digit numbers too (`1.234,5`, as the dashboard's issue
//! asks), where CLDR would write `1234,5`.

/// A language of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    Es,
    Fr,
}

impl Lang {
    pub const ALL: [Lang; 3] = [Lang::En, Lang::Es, Lang::Fr];

    /// The BCP 47 code, as `<html lang>`, `?lang=` and the cookie spell it.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
        }
    }

    /// The language's name in itself, for the picker.
    pub fn native(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Es => "Español",
            Lang::Fr => "Français",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        let primary = code.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Lang::En),
            "es" => Some(Lang::Es),
            "fr" => Some(Lang::Fr),
            _ => None,
        }
    }

    /// The best of our languages for an `Accept-Language` header: by quality, then
    /// by order of appearance; `None` if it names none of them.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut pieces = part.split(';');
            let tag = pieces.next().unwrap_or("").trim();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(lang) = Lang::from_code(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, lang));
                }
            }
        }
        best.map(|(_, l)| l)
    }

    /// The page's own words.
    pub fn ui(self) -> &'static Ui {
        match self {
            Lang::En => &EN,
            Lang::Es => &ES,
            Lang::Fr => &FR,
        }
    }

    /// A domain term (`report:messages`, `enum:user`, `col:closed_at` …), or `None`.
    pub fn term(self, key: &str) -> Option<&'static str> {
        let i = TERMS.binary_search_by(|(k, _)| k.cmp(&key)).ok()?;
        Some(TERMS[i].1[self as usize])
    }

    /// A term, or `fallback` when there is none (a channel's or category's own text).
    pub fn term_or<'a>(self, key: &str, fallback: &'a str) -> &'a str {
        self.term(key).unwrap_or(fallback)
    }

    /// The label of an enumeration's wire value, or the value itself.
    pub fn enum_label(self, wire: &str) -> &str {
        let key = format!("enum:{wire}");
        self.term(&key).unwrap_or(wire)
    }

    /// An integer with the language's grouping.
    pub fn int(self, n: i64) -> String {
        let digits = n.unsigned_abs().to_string();
        let sep = match self {
            Lang::En => ",",
            Lang::Es => ".",
            Lang::Fr => "\u{202f}",
        };
        let mut grouped = String::new();
        for (i, ch) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                grouped.push_str(sep);
            }
            grouped.push(ch);
        }
        if n < 0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    }

    /// A number with two decimals (percentages), grouped like `int`.
    pub fn decimal2(self, x: f64) -> String {
        let hundredths = (x * 100.0).round() as i64;
        let whole = self.int(hundredths / 100);
        let frac = (hundredths % 100).unsigned_abs();
        let point = if self == Lang::En { '.' } else { ',' };
        format!("{whole}{point}{frac:02}")
    }

    /// A percentage: `66.67%`, `66,67 %`, `66,67 %` (with a no-break space).
    pub fn percent(self, x: f64) -> String {
        match self {
            Lang::En => format!("{}%", self.decimal2(x)),
            _ => format!("{}\u{a0}%", self.decimal2(x)),
        }
    }

    /// A day as a person reads it: `Nov 18, 2026`, `18 nov 2026`, `18 nov. 2026`.
    pub fn date(self, year: i32, month: u8, day: u8) -> String {
        let m = self.ui().months_short[usize::from(month.clamp(1, 12)) - 1];
        match self {
            Lang::En => format!("{m} {day}, {year}"),
            _ => format!("{day} {m} {year}"),
        }
    }

    /// A day without its year, for chart axes: `Nov 18`, `18 nov`.
    pub fn day_month(self, month: u8, day: u8) -> String {
        let m = self.ui().months_short[usize::from(month.clamp(1, 12)) - 1];
        match self {
            Lang::En => format!("{m} {day}"),
            _ => format!("{day} {m}"),
        }
    }
}

/// Seconds as `hh:mm:ss` (hours grow past 99 when they must).
pub fn duration(seconds: i64) -> String {
    let s = seconds.unsigned_abs();
    let sign = if seconds < 0 { "-" } else { "" };
    format!("{sign}{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// The page's own words in one language.
pub struct Ui {
    pub sign_in_title: &'static str,
    pub sign_in_lead: &'static str,
    pub token_label: &'static str,
    pub sign_in: &'static str,
    pub sign_out: &'static str,
    pub bad_token: &'static str,
    pub not_read_token: &'static str,
    pub reports: &'static str,
    pub language: &'static str,
    pub date_range: &'static str,
    pub custom_range: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub apply: &'static str,
    pub add_filter: &'static str,
    pub clear_all: &'static str,
    pub remove_filter: &'static str,
    pub choose_values: &'static str,
    pub search_hint: &'static str,
    pub none_value: &'static str,
    pub cancel: &'static str,
    pub group_by: &'static str,
    pub not_applicable: &'static str,
    pub no_data: &'static str,
    pub show_table: &'static str,
    pub total: &'static str,
    /// A colon as the language writes it after a label (French puts a space before).
    pub colon: &'static str,
    pub count: &'static str,
    pub share: &'static str,
    pub logs: &'static str,
    pub export_csv: &'static str,
    pub rows_total: &'static str,
    pub page: &'static str,
    pub of: &'static str,
    pub previous: &'static str,
    pub next: &'static str,
    pub cap_note: &'static str,
    pub cap_link: &'static str,
    pub empty_log: &'static str,
    pub pending: &'static str,
    pub error_title: &'static str,
    pub back: &'static str,
    pub not_found: &'static str,
    pub heatmap_low: &'static str,
    pub heatmap_high: &'static str,
    pub bucket: &'static str,
    pub week_prefix: &'static str,
    pub unassigned: &'static str,
    pub add_value: &'static str,
    pub workspace: &'static str,
    pub days_short: [&'static str; 7],
    pub months_short: [&'static str; 12],
}

static EN: Ui = Ui {
    sign_in_title: "Sign in to your reports",
    sign_in_lead: "Paste a read token of your workspace. Your administrator creates one with",
    token_label: "Read token",
    sign_in: "Sign in",
    sign_out: "Sign out",
    bad_token: "This token is unknown or has been revoked.",
    not_read_token: "This token cannot read reports: sign in with a read token.",
    reports: "Reports",
    language: "Language",
    date_range: "Date range",
    custom_range: "Custom range",
    from: "From",
    to: "To",
    apply: "Apply",
    add_filter: "+ Add filter",
    clear_all: "Clear all",
    remove_filter: "Remove filter",
    choose_values: "Choose one or more values",
    search_hint: "A contact's id or part of its name",
    none_value: "None (-)",
    cancel: "Cancel",
    group_by: "Group by",
    not_applicable: "The selected filters are not applicable here",
    no_data: "The selected filters have no data",
    show_table: "Show as table",
    total: "Total",
    colon: ":",
    count: "Count",
    share: "Share",
    logs: "Logs",
    export_csv: "Export CSV",
    rows_total: "rows",
    page: "Page",
    of: "of",
    previous: "Previous",
    next: "Next",
    cap_note: "The report table shows at most 10,000 rows.",
    cap_link: "Export the CSV for all of them.",
    empty_log: "No rows in this range.",
    pending: "Recent events are still being processed: these numbers may lag by a few seconds.",
    error_title: "This view cannot be shown",
    back: "Back to the report",
    not_found: "Page not found",
    heatmap_low: "Fewer",
    heatmap_high: "More",
    bucket: "Period",
    week_prefix: "W",
    unassigned: "Unassigned",
    add_value: "Add",
    workspace: "Workspace",
    days_short: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    months_short: [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
};

static ES: Ui = Ui {
    sign_in_title: "Inicie sesión en sus informes",
    sign_in_lead: "Pegue un token de lectura de su espacio de trabajo. Su administrador lo crea con",
    token_label: "Token de lectura",
    sign_in: "Iniciar sesión",
    sign_out: "Cerrar sesión",
    bad_token: "Este token no existe o ha sido revocado.",
    not_read_token: "Este token no puede leer informes: inicie sesión con un token de lectura.",
    reports: "Informes",
    language: "Idioma",
    date_range: "Frecuencia y fecha",
    custom_range: "Rango personalizado",
    from: "Desde",
    to: "Hasta",
    apply: "Aplicar",
    add_filter: "+ Añadir filtro",
    clear_all: "Borrar todo",
    remove_filter: "Quitar filtro",
    choose_values: "Elija uno o más valores",
    search_hint: "El ID de un contacto o parte de su nombre",
    none_value: "Ninguno (-)",
    cancel: "Cancelar",
    group_by: "Agrupar por",
    not_applicable: "Los filtros seleccionados no son aplicables aquí",
    no_data: "Los filtros seleccionados no tienen datos aplicables",
    show_table: "Ver como tabla",
    total: "Total",
    colon: ":",
    count: "Cantidad",
    share: "Porcentaje",
    logs: "Registros",
    export_csv: "Exportar CSV",
    rows_total: "filas",
    page: "Página",
    of: "de",
    previous: "Anterior",
    next: "Siguiente",
    cap_note: "La tabla de informes muestra un máximo de 10.000 filas.",
    cap_link: "Exporte el CSV para verlas todas.",
    empty_log: "No hay filas en este período.",
    pending: "Aún se están procesando eventos recientes: estas cifras pueden tardar unos segundos en actualizarse.",
    error_title: "No se puede mostrar esta vista",
    back: "Volver al informe",
    not_found: "Página no encontrada",
    heatmap_low: "Menos",
    heatmap_high: "Más",
    bucket: "Período",
    week_prefix: "S",
    unassigned: "Sin asignar",
    add_value: "Añadir",
    workspace: "Espacio de trabajo",
    days_short: ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
    months_short: [
        "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
    ],
};

static FR: Ui = Ui {
    sign_in_title: "Connectez-vous à vos rapports",
    sign_in_lead: "Collez un jeton de lecture de votre espace de travail. Votre administrateur le crée avec",
    token_label: "Jeton de lecture",
    sign_in: "Se connecter",
    sign_out: "Se déconnecter",
    bad_token: "Ce jeton est inconnu ou a été révoqué.",
    not_read_token: "Ce jeton ne permet pas de lire les rapports : connectez-vous avec un jeton de lecture.",
    reports: "Rapports",
    language: "Langue",
    date_range: "Fréquence et date",
    custom_range: "Plage personnalisée",
    from: "Du",
    to: "Au",
    apply: "Appliquer",
    add_filter: "+ Ajouter un filtre",
    clear_all: "Effacer tout",
    remove_filter: "Retirer le filtre",
    choose_values: "Choisissez une ou plusieurs valeurs",
    search_hint: "L'ID d'un contact ou une partie de son nom",
    none_value: "Aucun (-)",
    cancel: "Annuler",
    group_by: "Regrouper par",
    not_applicable: "Les filtres sélectionnés ne sont pas applicables ici",
    no_data: "Les filtres sélectionnés n'ont pas de données",
    show_table: "Afficher en tableau",
    total: "Total",
    colon: "\u{a0}:",
    count: "Nombre",
    share: "Part",
    logs: "Journaux",
    export_csv: "Exporter en CSV",
    rows_total: "lignes",
    page: "Page",
    of: "sur",
    previous: "Précédent",
    next: "Suivant",
    cap_note: "Le tableau du rapport affiche au plus 10\u{202f}000 lignes.",
    cap_link: "Exportez le CSV pour les obtenir toutes.",
    empty_log: "Aucune ligne sur cette période.",
    pending: "Des événements récents sont encore en cours de traitement : ces chiffres peuvent avoir quelques secondes de retard.",
    error_title: "Cette vue ne peut pas être affichée",
    back: "Retour au rapport",
    not_found: "Page introuvable",
    heatmap_low: "Moins",
    heatmap_high: "Plus",
    bucket: "Période",
    week_prefix: "S",
    unassigned: "Non assigné",
    add_value: "Ajouter",
    workspace: "Espace de travail",
    days_short: ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
    months_short: [
        "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
        "nov.", "déc.",
    ],
};

/// The domain's terms, sorted by key (looked up by binary search; a test keeps the
/// order): English, Spanish, French.
static TERMS: &[(&str, [&str; 3])] = &[
    (
        "col:assigned_by",
        ["Assigned by", "Asignado por", "Assigné par"],
    ),
    (
        "col:assignments",
        ["Assignments", "Asignaciones", "Assignations"],
    ),
    ("col:at", ["Timestamp", "Fecha y hora", "Horodatage"]),
    (
        "col:average_response_time",
        [
            "Average response time",
            "Tiempo medio de respuesta",
            "Temps de réponse moyen",
        ],
    ),
    ("col:category", ["Category", "Categoría", "Catégorie"]),
    ("col:channel", ["Channel", "Canal", "Canal"]),
    (
        "col:closed_at",
        ["Closed at", "Cerrada el", "Horodatage fermé"],
    ),
    ("col:closed_by", ["Closed by", "Cerrada por", "Fermé par"]),
    (
        "col:closed_by_team",
        [
            "Closed by team",
            "Cerrada por el equipo",
            "Fermé par l'équipe",
        ],
    ),
    (
        "col:closed_source",
        ["Closed source", "Fuente de cierre", "Fermé par la source"],
    ),
    (
        "col:contact_id",
        ["Contact ID", "ID de contacto", "ID du contact"],
    ),
    (
        "col:contact_name",
        ["Contact name", "Nombre del contacto", "Nom du contact"],
    ),
    ("col:content", ["Content", "Contenido", "Contenu"]),
    (
        "col:conversation_id",
        [
            "Conversation ID",
            "ID de conversación",
            "ID de la conversation",
        ],
    ),
    (
        "col:delivered_at",
        ["Delivered at", "Entregado el", "Livré le"],
    ),
    ("col:error", ["Error", "Error", "Erreur"]),
    ("col:failed_at", ["Failed at", "Fallido el", "Échoué le"]),
    (
        "col:first_assignee",
        [
            "First assignee",
            "Primer asignado",
            "Première personne assignée",
        ],
    ),
    (
        "col:first_assignment_at",
        [
            "First assignment at",
            "Primera asignación el",
            "Première assignation le",
        ],
    ),
    (
        "col:first_assignment_to_close",
        [
            "First assignment to close",
            "Primera asignación al cierre",
            "Première assignation à la fermeture",
        ],
    ),
    (
        "col:first_assignment_to_first_response",
        [
            "First assignment to first response",
            "Primera asignación a primera respuesta",
            "Première assignation à la première réponse",
        ],
    ),
    (
        "col:first_response_at",
        [
            "First response at",
            "Primera respuesta el",
            "Première réponse le",
        ],
    ),
    (
        "col:first_response_by",
        [
            "First response by",
            "Primera respuesta por",
            "Première réponse par",
        ],
    ),
    (
        "col:first_response_time",
        [
            "First response time",
            "Tiempo de primera respuesta",
            "Temps de première réponse",
        ],
    ),
    (
        "col:incoming_messages",
        [
            "Incoming messages",
            "Mensajes entrantes",
            "Messages entrants",
        ],
    ),
    (
        "col:last_assignee",
        [
            "Last assignee",
            "Último asignado",
            "Dernière personne assignée",
        ],
    ),
    (
        "col:last_assignment_at",
        [
            "Last assignment at",
            "Última asignación el",
            "Dernière assignation le",
        ],
    ),
    (
        "col:last_assignment_to_close",
        [
            "Last assignment to close",
            "Última asignación al cierre",
            "Dernière assignation à la fermeture",
        ],
    ),
    (
        "col:last_assignment_to_response",
        [
            "Last assignment to response",
            "Última asignación a respuesta",
            "Dernière assignation à la réponse",
        ],
    ),
    (
        "col:new_assignee",
        [
            "New assignee",
            "Nuevo cesionario",
            "Nouvelle personne assignée",
        ],
    ),
    (
        "col:opened_at",
        ["Opened at", "Abierta el", "Horodatage ouvert"],
    ),
    (
        "col:opened_channel",
        ["Opened channel", "Canal de apertura", "Canal d'ouverture"],
    ),
    (
        "col:opened_source",
        ["Opened source", "Fuente de apertura", "Source d'ouverture"],
    ),
    (
        "col:outgoing_messages",
        [
            "Outgoing messages",
            "Mensajes salientes",
            "Messages sortants",
        ],
    ),
    (
        "col:previous_assignee",
        [
            "Previous assignee",
            "Cesionario anterior",
            "Personne assignée précédente",
        ],
    ),
    (
        "col:primary_contact_id",
        [
            "Primary contact ID",
            "ID del contacto principal",
            "ID du contact principal",
        ],
    ),
    ("col:read_at", ["Read at", "Leído el", "Lu le"]),
    (
        "col:resolution_time",
        [
            "Resolution time",
            "Tiempo de resolución",
            "Temps de résolution",
        ],
    ),
    ("col:responses", ["Responses", "Respuestas", "Réponses"]),
    ("col:source", ["Source", "Fuente", "Source"]),
    ("col:subtype", ["Subtype", "Subtipo", "Sous-type"]),
    ("col:summary", ["Summary", "Resumen", "Résumé"]),
    (
        "col:time_to_first_assignment",
        [
            "Time to first assignment",
            "Tiempo hasta la primera asignación",
            "Délai de première assignation",
        ],
    ),
    ("col:type", ["Type", "Tipo", "Type"]),
    ("col:user", ["User", "Usuario", "Utilisateur"]),
    (
        "comp:added",
        ["Contacts added", "Contactos añadidos", "Contacts ajoutés"],
    ),
    (
        "comp:added_by_source",
        [
            "Contacts added by source",
            "Contactos añadidos por fuente",
            "Contacts ajoutés par source",
        ],
    ),
    (
        "comp:added_vs_deleted_vs_merged",
        [
            "Added vs deleted vs merged",
            "Añadidos vs eliminados vs fusionados",
            "Ajoutés vs supprimés vs fusionnés",
        ],
    ),
    (
        "comp:assignments_by_source",
        [
            "Contact assignments by source",
            "Asignaciones de contactos por fuente",
            "Assignations de contacts par source",
        ],
    ),
    (
        "comp:closed",
        [
            "Conversations closed",
            "Conversaciones cerradas",
            "Conversations fermées",
        ],
    ),
    (
        "comp:closed_by_category",
        [
            "Closed conversations by category",
            "Conversaciones cerradas por categoría",
            "Conversations fermées par catégorie",
        ],
    ),
    (
        "comp:closed_by_contact_type",
        [
            "Closed conversations by contact type",
            "Conversaciones cerradas por tipo de contacto",
            "Conversations fermées par type de contact",
        ],
    ),
    (
        "comp:closed_by_source",
        [
            "Closed conversations by source",
            "Conversaciones cerradas por fuente",
            "Conversations fermées par source",
        ],
    ),
    (
        "comp:closed_heatmap",
        [
            "Closed conversations heatmap",
            "Mapa de calor de conversaciones cerradas",
            "Carte thermique des conversations fermées",
        ],
    ),
    (
        "comp:connected_by_channel",
        [
            "Contacts connected by channel",
            "Contactos conectados por canal",
            "Contacts connectés par canal",
        ],
    ),
    (
        "comp:deleted",
        [
            "Contacts deleted",
            "Contactos eliminados",
            "Contacts supprimés",
        ],
    ),
    (
        "comp:delivery",
        [
            "Outgoing message delivery",
            "Entrega de mensajes salientes",
            "Livraison des messages sortants",
        ],
    ),
    (
        "comp:incoming_by_channel",
        [
            "Incoming messages by channel",
            "Mensajes entrantes por canal",
            "Messages entrants par canal",
        ],
    ),
    (
        "comp:merged",
        [
            "Contacts merged",
            "Contactos fusionados",
            "Contacts fusionnés",
        ],
    ),
    (
        "comp:open_vs_closed",
        [
            "Opened vs closed",
            "Abiertas vs cerradas",
            "Ouvertes vs fermées",
        ],
    ),
    (
        "comp:opened",
        [
            "Conversations opened",
            "Conversaciones abiertas",
            "Conversations ouvertes",
        ],
    ),
    (
        "comp:opened_by_channel",
        [
            "Opened conversations by channel",
            "Conversaciones abiertas por canal",
            "Conversations ouvertes par canal",
        ],
    ),
    (
        "comp:opened_by_contact_type",
        [
            "Opened conversations by contact type",
            "Conversaciones abiertas por tipo de contacto",
            "Conversations ouvertes par type de contact",
        ],
    ),
    (
        "comp:opened_by_source",
        [
            "Opened conversations by source",
            "Conversaciones abiertas por fuente",
            "Conversations ouvertes par source",
        ],
    ),
    (
        "comp:opened_heatmap",
        [
            "Opened conversations heatmap",
            "Mapa de calor de conversaciones abiertas",
            "Carte thermique des conversations ouvertes",
        ],
    ),
    (
        "comp:outgoing_by_channel",
        [
            "Outgoing messages by channel",
            "Mensajes salientes por canal",
            "Messages sortants par canal",
        ],
    ),
    (
        "comp:outgoing_by_source",
        [
            "Outgoing messages by source",
            "Mensajes salientes por fuente",
            "Messages sortants par source",
        ],
    ),
    (
        "comp:outgoing_by_subtype",
        [
            "Outgoing messages by subtype",
            "Mensajes salientes por subtipo",
            "Messages sortants par sous-type",
        ],
    ),
    (
        "comp:outgoing_by_type",
        [
            "Outgoing messages by type",
            "Mensajes salientes por tipo",
            "Messages sortants par type",
        ],
    ),
    ("enum:audio", ["Audio", "Audio", "Audio"]),
    ("enum:blocked", ["Blocked", "Bloqueado", "Bloqué"]),
    ("enum:bot", ["Bot", "Bot", "Bot"]),
    ("enum:broadcast", ["Broadcast", "Difusión", "Diffusion"]),
    (
        "enum:click_to_chat_ad",
        [
            "Click-to-chat ad",
            "Anuncio de click-to-chat",
            "Annonce click-to-chat",
        ],
    ),
    ("enum:contact", ["Contact", "Contacto", "Contact"]),
    (
        "enum:contact_deleted",
        ["Contact deleted", "Contacto eliminado", "Contact supprimé"],
    ),
    (
        "enum:contact_import",
        ["Contact import", "Importar contactos", "Import de contacts"],
    ),
    (
        "enum:contact_merged",
        ["Contact merged", "Contacto fusionado", "Contact fusionné"],
    ),
    ("enum:custom", ["Custom", "Personalizado", "Personnalisé"]),
    ("enum:delivered", ["Delivered", "Entregado", "Livré"]),
    (
        "enum:developer_api",
        ["Developer API", "API de desarrollador", "API développeur"],
    ),
    (
        "enum:echo_message",
        ["Echo message", "Mensaje echo", "Message écho"],
    ),
    ("enum:email", ["Email", "Correo electrónico", "E-mail"]),
    (
        "enum:facebook_message_tag",
        [
            "Facebook message tag",
            "Etiqueta de mensaje de Facebook",
            "Tag de message Facebook",
        ],
    ),
    ("enum:failed", ["Failed", "Fallido", "Échoué"]),
    ("enum:file", ["File", "Archivo", "Fichier"]),
    (
        "enum:google_business",
        ["Google Business", "Google Business", "Google Business"],
    ),
    ("enum:image", ["Image", "Imagen", "Image"]),
    (
        "enum:incoming_message",
        ["Incoming message", "Mensaje entrante", "Message entrant"],
    ),
    ("enum:instagram", ["Instagram", "Instagram", "Instagram"]),
    ("enum:line", ["LINE", "LINE", "LINE"]),
    ("enum:location", ["Location", "Ubicación", "Position"]),
    ("enum:make", ["Make", "Make", "Make"]),
    ("enum:messenger", ["Messenger", "Messenger", "Messenger"]),
    ("enum:new", ["New", "Nuevo", "Nouveau"]),
    ("enum:other", ["Other", "Otro", "Autre"]),
    ("enum:read", ["Read", "Leído", "Lu"]),
    ("enum:returning", ["Returning", "Recurrente", "De retour"]),
    ("enum:sent", ["Sent", "Enviado", "Envoyé"]),
    ("enum:session", ["Session", "Sesión", "Session"]),
    ("enum:sms", ["SMS", "SMS", "SMS"]),
    ("enum:sticker", ["Sticker", "Sticker", "Autocollant"]),
    ("enum:telegram", ["Telegram", "Telegram", "Telegram"]),
    ("enum:template", ["Template", "Plantilla", "Modèle"]),
    ("enum:text", ["Text", "Texto", "Texte"]),
    ("enum:tiktok", ["TikTok", "TikTok", "TikTok"]),
    ("enum:user", ["User", "Usuario", "Utilisateur"]),
    ("enum:viber", ["Viber", "Viber", "Viber"]),
    ("enum:video", ["Video", "Vídeo", "Vidéo"]),
    ("enum:webchat", ["Web chat", "Chat web", "Chat web"]),
    ("enum:whatsapp", ["WhatsApp", "WhatsApp", "WhatsApp"]),
    (
        "enum:whatsapp_template",
        [
            "WhatsApp template",
            "Plantilla de WhatsApp",
            "Modèle WhatsApp",
        ],
    ),
    (
        "enum:workflow",
        ["Workflow", "Flujo de trabajo", "Flux de travail"],
    ),
    ("enum:zapier", ["Zapier", "Zapier", "Zapier"]),
    (
        "filter:assigned_by",
        [
            "Assigned by user",
            "Asignado por el usuario",
            "Assigné par l'utilisateur",
        ],
    ),
    (
        "filter:assignee",
        ["Assigned to", "Asignado a", "Assigné à"],
    ),
    (
        "filter:broadcast",
        [
            "Broadcast name",
            "Nombre de transmisión",
            "Nom de la diffusion",
        ],
    ),
    (
        "filter:category",
        [
            "Conversation category",
            "Categoría de conversación",
            "Catégorie de conversation",
        ],
    ),
    ("filter:channel", ["Channel", "Canal", "Canal"]),
    (
        "filter:closed_by_team",
        [
            "Closed by team",
            "Cerrada por el equipo",
            "Fermé par équipe",
        ],
    ),
    (
        "filter:closed_by_user",
        [
            "Closed by user",
            "Cerrada por el usuario",
            "Fermé par l'utilisateur",
        ],
    ),
    (
        "filter:closed_source",
        [
            "Conversation closed source",
            "Fuente de cierre de la conversación",
            "Source de la conversation fermée",
        ],
    ),
    ("filter:contact", ["Contact", "Contacto", "Contact"]),
    (
        "filter:contact_type",
        ["Contact type", "Tipo de contacto", "Type de contact"],
    ),
    (
        "filter:conversation",
        [
            "Conversation ID",
            "ID de conversación",
            "ID de la conversation",
        ],
    ),
    (
        "filter:first_assignee",
        [
            "First assignee",
            "Primer asignado",
            "Première personne assignée",
        ],
    ),
    (
        "filter:first_response_by",
        [
            "First response by",
            "Primera respuesta por",
            "Première réponse par",
        ],
    ),
    (
        "filter:last_assignee",
        [
            "Last assignee",
            "Último asignado",
            "Dernière personne assignée",
        ],
    ),
    (
        "filter:opened_channel",
        [
            "Conversation opened channel",
            "Canal de apertura de la conversación",
            "Canal ouvert de la conversation",
        ],
    ),
    (
        "filter:opened_source",
        [
            "Conversation opened source",
            "Fuente de apertura de la conversación",
            "Source de la conversation ouverte",
        ],
    ),
    ("filter:source", ["Source", "Fuente", "Source"]),
    ("filter:team", ["Team", "Equipo", "Équipe"]),
    (
        "filter:type",
        [
            "Outgoing message type",
            "Tipo de mensaje saliente",
            "Type de message sortant",
        ],
    ),
    ("filter:user", ["User", "Usuario", "Utilisateur"]),
    ("group:category", ["Category", "Categoría", "Catégorie"]),
    ("group:channel", ["Channel", "Canal", "Canal"]),
    (
        "group:contact_type",
        ["Contact type", "Tipo de contacto", "Type de contact"],
    ),
    ("group:source", ["Source", "Fuente", "Source"]),
    (
        "group:status",
        [
            "Delivery status",
            "Estado de entrega",
            "Statut de livraison",
        ],
    ),
    ("group:subtype", ["Subtype", "Subtipo", "Sous-type"]),
    ("group:type", ["Type", "Tipo", "Type"]),
    (
        "log:added",
        [
            "Contacts added log",
            "Registro de contactos añadidos",
            "Journal des contacts ajoutés",
        ],
    ),
    (
        "log:assignments",
        [
            "Contact assignment log",
            "Registro de asignaciones de contactos",
            "Journal des assignations de contacts",
        ],
    ),
    (
        "log:connected",
        [
            "Contacts connected log",
            "Registro de contactos conectados",
            "Journal des contacts connectés",
        ],
    ),
    (
        "log:conversations",
        [
            "Conversation list",
            "Lista de conversaciones",
            "Liste des conversations",
        ],
    ),
    (
        "log:deleted",
        [
            "Contacts deleted log",
            "Registro de contactos eliminados",
            "Journal des contacts supprimés",
        ],
    ),
    (
        "log:failed",
        ["Failed messages", "Mensajes fallidos", "Messages échoués"],
    ),
    (
        "log:incoming",
        [
            "Incoming messages",
            "Mensajes entrantes",
            "Messages entrants",
        ],
    ),
    (
        "log:merged",
        [
            "Contacts merged log",
            "Registro de contactos fusionados",
            "Journal des contacts fusionnés",
        ],
    ),
    (
        "log:outgoing",
        [
            "Outgoing messages",
            "Mensajes salientes",
            "Messages sortants",
        ],
    ),
    (
        "preset:last_14_days",
        ["Last 14 days", "Últimos 14 días", "Les 14 derniers jours"],
    ),
    (
        "preset:last_30_days",
        ["Last 30 days", "Últimos 30 días", "Les 30 derniers jours"],
    ),
    (
        "preset:last_7_days",
        ["Last 7 days", "Los últimos 7 días", "Les 7 derniers jours"],
    ),
    (
        "preset:last_month",
        ["Last month", "El mes pasado", "Le mois dernier"],
    ),
    (
        "preset:this_month",
        ["This month", "Este mes", "Ce mois-ci"],
    ),
    ("preset:today", ["Today", "Hoy", "Aujourd'hui"]),
    ("preset:yesterday", ["Yesterday", "Ayer", "Hier"]),
    (
        "report:assignments",
        ["Assignments", "Asignaciones", "Assignations"],
    ),
    ("report:contacts", ["Contacts", "Contactos", "Contacts"]),
    (
        "report:conversations",
        ["Conversations", "Conversaciones", "Conversations"],
    ),
    ("report:messages", ["Messages", "Mensajes", "Messages"]),
    (
        "section:closed",
        [
            "Closed conversations",
            "Conversaciones cerradas",
            "Conversations fermées",
        ],
    ),
    (
        "section:contacts",
        [
            "Contacts overview",
            "Resumen de contactos",
            "Aperçu des contacts",
        ],
    ),
    (
        "section:heatmaps",
        ["Heatmaps", "Mapas de calor", "Cartes thermiques"],
    ),
    (
        "section:incoming",
        [
            "Incoming messages",
            "Mensajes entrantes",
            "Messages entrants",
        ],
    ),
    (
        "section:opened",
        [
            "Opened conversations",
            "Conversaciones abiertas",
            "Conversations ouvertes",
        ],
    ),
    (
        "section:outgoing",
        [
            "Outgoing messages",
            "Mensajes salientes",
            "Messages sortants",
        ],
    ),
    (
        "section:overview",
        [
            "Conversations overview",
            "Resumen de conversaciones",
            "Aperçu des conversations",
        ],
    ),
    ("series:added", ["Added", "Añadidos", "Ajoutés"]),
    ("series:closed", ["Closed", "Cerradas", "Fermées"]),
    ("series:deleted", ["Deleted", "Eliminados", "Supprimés"]),
    ("series:merged", ["Merged", "Fusionados", "Fusionnés"]),
    ("series:opened", ["Opened", "Abiertas", "Ouvertes"]),
];

#[cfg(test)]
mod tests {
    use super::*;
    use parley_core::enums::*;
    use parley_core::report::{enum_values, Report, Shape};
    use parley_core::time::Preset;

    #[test]
    fn terms_are_sorted_and_unique() {
        for pair in TERMS.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{} then {}", pair[0].0, pair[1].0);
        }
    }

    /// Every report, component, series, filter, log, column, preset and enumeration
    /// value of SPEC.md has its label in each language.
    #[test]
    fn every_term_of_the_spec_is_translated() {
        let mut keys = Vec::new();
        for r in Report::ALL {
            keys.push(format!("report:{}", r.wire()));
            for c in r.components() {
                keys.push(format!("comp:{}", c.id));
                if let Shape::Bar(series) = c.shape {
                    keys.extend(series.iter().map(|(k, _, _)| format!("series:{k}")));
                }
            }
            for f in r.filters() {
                keys.push(format!("filter:{f}"));
                for v in enum_values(*r, f).unwrap_or_default() {
                    keys.push(format!("enum:{v}"));
                }
            }
            for l in r.logs() {
                keys.push(format!("log:{}", l.wire()));
                keys.extend(l.columns().iter().map(|(c, _)| format!("col:{c}")));
            }
        }
        keys.extend(Preset::ALL.iter().map(|p| format!("preset:{}", p.wire())));
        let wires = DeliveryStatus::ALL
            .iter()
            .map(|v| v.wire())
            .chain(ContactType::ALL.iter().map(|v| v.wire()))
            .chain(ChannelKind::ALL.iter().map(|v| v.wire()))
            .chain(ContentType::ALL.iter().map(|v| v.wire()))
            .chain(CloseSource::ALL.iter().map(|v| v.wire()))
            .chain(MessageType::ALL.iter().map(|v| v.wire()));
        keys.extend(wires.map(|w| format!("enum:{w}")));
        for key in keys {
            for lang in Lang::ALL {
                let t = lang.term(&key);
                assert!(t.is_some_and(|t| !t.is_empty()), "{key} in {}", lang.code());
            }
        }
    }

    #[test]
    fn numbers_follow_each_language() {
        assert_eq!(Lang::En.int(1_234_567), "1,234,567");
        assert_eq!(Lang::Es.int(1_234_567), "1.234.567");
        assert_eq!(Lang::Es.int(1234), "1.234", "as the issue writes 1.234,5");
        assert_eq!(Lang::Es.int(12_345), "12.345");
        assert_eq!(Lang::Fr.int(1234), "1\u{202f}234");
        assert_eq!(Lang::En.int(-1234), "-1,234");
        assert_eq!(Lang::En.decimal2(1234.5), "1,234.50");
        assert_eq!(Lang::Es.decimal2(1234.5), "1.234,50");
        assert_eq!(Lang::Es.decimal2(12345.5), "12.345,50");
        assert_eq!(Lang::En.percent(66.67), "66.67%");
        assert_eq!(Lang::Fr.percent(66.67), "66,67\u{a0}%");
        assert_eq!(Lang::En.percent(0.0), "0.00%");
        assert_eq!(duration(3725), "01:02:05");
        assert_eq!(duration(360_000), "100:00:00");
    }

    #[test]
    fn dates_name_their_months() {
        assert_eq!(Lang::En.date(2026, 11, 18), "Nov 18, 2026");
        assert_eq!(Lang::Es.date(2026, 11, 18), "18 nov 2026");
        assert_eq!(Lang::Fr.date(2026, 2, 1), "1 févr. 2026");
    }

    #[test]
    fn the_language_comes_from_accept_language_by_quality() {
        assert_eq!(
            Lang::from_accept_language("fr-CH, fr;q=0.9, en;q=0.8"),
            Some(Lang::Fr)
        );
        assert_eq!(
            Lang::from_accept_language("de, es;q=0.5, en;q=0.7"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de-DE"), None);
        assert_eq!(Lang::from_accept_language("es-419"), Some(Lang::Es));
        assert_eq!(Lang::from_accept_language("en;q=0, es"), Some(Lang::Es));
    }
}
