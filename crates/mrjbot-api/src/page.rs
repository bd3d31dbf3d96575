//! The customer's subscription page: status, days and traffic left, the link as a QR
//! code and one-tap import buttons for the common apps, in Persian, English or Russian.
//!
//! One self-contained HTML document (inline CSS, a few lines of inline JS for "copy",
//! QR codes as inline SVG), so it works behind any proxy and loads nothing from the
//! internet. The page is rendered per request: browsers are rare next to the apps.

use askama::Template;
use mrjbot_app::feed::SubPage;
use mrjbot_domain::SubscriptionStatus;
use mrjbot_i18n::{Lang, t, t_args};

/// One app with its import deep link.
pub(crate) struct AppLink {
    name: &'static str,
    href: String,
}

/// Apps of one platform.
pub(crate) struct Platform {
    name: String,
    apps: Vec<AppLink>,
}

/// One share link with its QR code.
pub(crate) struct Config {
    remark: String,
    link: String,
    qr: String,
}

#[derive(Template)]
#[template(path = "sub.html")]
struct PageTemplate<'a> {
    lang: &'static str,
    dir: &'static str,
    title: &'a str,
    username: &'a str,
    status_class: &'static str,
    status_text: String,
    status_emoji: &'static str,
    expiry_text: String,
    days_text: String,
    data_text: String,
    data_left_text: String,
    percent: u64,
    url: &'a str,
    qr: String,
    platforms: Vec<Platform>,
    configs: Vec<Config>,
    support_url: &'a str,
    bot_url: String,
    renew_text: String,
    tx: Texts,
    langs: Vec<(&'static str, &'static str, bool)>,
}

/// Fixed texts of the page in the chosen language.
struct Texts {
    link: String,
    copy: String,
    copied: String,
    qr: String,
    apps: String,
    apps_help: String,
    configs: String,
    support: String,
    no_configs: String,
    page_title: String,
}

fn qr_svg(data: &str) -> String {
    match qrcode::QrCode::with_error_correction_level(data, qrcode::EcLevel::M) {
        Ok(code) => {
            let svg = code
                .render::<qrcode::render::svg::Color<'_>>()
                .min_dimensions(220, 220)
                .dark_color(qrcode::render::svg::Color("#0b0f17"))
                .light_color(qrcode::render::svg::Color("#ffffff"))
                .build();
            // Drop the XML prolog: the SVG is inlined into HTML.
            match svg.find("<svg") {
                Some(i) => svg[i..].to_owned(),
                None => svg,
            }
        }
        Err(_) => String::new(),
    }
}

fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn b64url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

/// Import deep links per platform (each app's documented URL scheme).
fn platforms(lang: Lang, url: &str, title: &str) -> Vec<Platform> {
    let u = enc(url);
    let name = enc(title);
    let clash = enc(&format!("{url}/clash-meta"));
    let singbox = enc(&format!("{url}/sing-box"));
    let hiddify = || AppLink {
        name: "Hiddify",
        href: format!("hiddify://import/{url}#{name}"),
    };
    let singbox_app = |n: &'static str| AppLink {
        name: n,
        href: format!("sing-box://import-remote-profile?url={singbox}#{name}"),
    };
    let clash_app = |n: &'static str| AppLink {
        name: n,
        href: format!("clash://install-config?url={clash}&name={name}"),
    };
    let p = |key: &str, apps: Vec<AppLink>| Platform {
        name: t(lang, key),
        apps,
    };
    vec![
        p(
            "sub-platform-android",
            vec![
                AppLink {
                    name: "v2rayNG",
                    href: format!("v2rayng://install-config?url={u}#{name}"),
                },
                hiddify(),
                singbox_app("sing-box"),
                clash_app("FlClash"),
                AppLink {
                    name: "Karing",
                    href: format!("karing://install-config?url={u}&name={name}"),
                },
            ],
        ),
        p(
            "sub-platform-ios",
            vec![
                AppLink {
                    name: "Streisand",
                    href: format!("streisand://import/{url}#{name}"),
                },
                AppLink {
                    name: "Shadowrocket",
                    href: format!("shadowrocket://add/sub://{}?remark={name}", b64url(url)),
                },
                AppLink {
                    name: "Happ",
                    href: format!("happ://add/{url}"),
                },
                AppLink {
                    name: "V2Box",
                    href: format!("v2box://install-sub?url={u}&name={name}"),
                },
                singbox_app("sing-box"),
                hiddify(),
            ],
        ),
        p(
            "sub-platform-windows",
            vec![hiddify(), clash_app("Clash Verge")],
        ),
        p(
            "sub-platform-macos",
            vec![hiddify(), singbox_app("sing-box"), clash_app("Clash Verge")],
        ),
        p(
            "sub-platform-linux",
            vec![hiddify(), clash_app("Clash Verge")],
        ),
    ]
}

fn status_class(s: SubscriptionStatus) -> &'static str {
    match s {
        SubscriptionStatus::Active => "ok",
        SubscriptionStatus::OnHold | SubscriptionStatus::Temporary => "wait",
        _ => "bad",
    }
}

/// Renders the page. The language is `?lang=`, else the browser's, else the shop's.
pub(crate) fn render(
    data: &SubPage,
    lang_param: Option<&str>,
    accept_language: Option<&str>,
) -> Result<String, askama::Error> {
    let s = &data.settings;
    let lang = lang_param
        .and_then(Lang::parse)
        .or_else(|| accept_language.and_then(Lang::from_accept_language))
        .or_else(|| Lang::parse(&s.language))
        .unwrap_or(Lang::En);
    let status = data.status.as_str();
    let expiry_text = match data.expires_at {
        Some(e) => t_args(
            lang,
            "sub-expires",
            &[(
                "date",
                mrjbot_i18n::format_date_in(e, s.utc_offset_minutes, lang)
                    .as_str()
                    .into(),
            )],
        ),
        None => t(lang, "sub-never-expires"),
    };
    let days_text = data
        .days_left
        .map(|d| mrjbot_i18n::format_days_left(d, lang))
        .unwrap_or_default();
    let used = mrjbot_i18n::format_bytes(data.used, lang);
    let (data_text, data_left_text, percent) = match data.limit {
        Some(limit) => (
            t_args(
                lang,
                "sub-data-used",
                &[
                    ("used", used.as_str().into()),
                    (
                        "total",
                        mrjbot_i18n::format_bytes(limit, lang).as_str().into(),
                    ),
                ],
            ),
            t_args(
                lang,
                "sub-data-left",
                &[(
                    "left",
                    mrjbot_i18n::format_bytes(limit.saturating_sub(data.used), lang)
                        .as_str()
                        .into(),
                )],
            ),
            (data.used.saturating_mul(100) / limit.max(1)).min(100),
        ),
        None => (t(lang, "sub-data-unlimited"), String::new(), 0),
    };
    let configs = data
        .links
        .iter()
        .map(|(remark, link)| Config {
            remark: remark.clone(),
            link: link.clone(),
            qr: qr_svg(link),
        })
        .collect();
    let bot_url = s
        .bot_username
        .strip_prefix('@')
        .map(|b| format!("https://t.me/{b}"))
        .unwrap_or_default();
    let tpl = PageTemplate {
        lang: lang.code(),
        dir: if lang.is_rtl() { "rtl" } else { "ltr" },
        title: &s.title,
        username: &data.username,
        status_class: status_class(data.status),
        status_text: t(lang, &format!("sub-status-{status}")),
        status_emoji: mrjbot_i18n::status_emoji(status),
        expiry_text,
        days_text,
        data_text,
        data_left_text,
        percent,
        url: &data.url,
        qr: qr_svg(&data.url),
        platforms: platforms(lang, &data.url, &s.title),
        configs,
        support_url: &s.support_url,
        bot_url,
        renew_text: t(lang, "sub-renew"),
        tx: Texts {
            link: t(lang, "sub-link"),
            copy: t(lang, "sub-copy"),
            copied: t(lang, "sub-copied"),
            qr: t(lang, "sub-qr"),
            apps: t(lang, "sub-apps"),
            apps_help: t(lang, "sub-apps-help"),
            configs: t(lang, "sub-configs"),
            support: t(lang, "sub-support"),
            no_configs: t(lang, "sub-no-configs"),
            page_title: t(lang, "sub-page-title"),
        },
        langs: [Lang::Fa, Lang::En, Lang::Ru]
            .into_iter()
            .map(|l| {
                (
                    l.code(),
                    match l {
                        Lang::Fa => "فارسی",
                        Lang::En => "English",
                        Lang::Ru => "Русский",
                    },
                    l == lang,
                )
            })
            .collect(),
    };
    tpl.render()
}
