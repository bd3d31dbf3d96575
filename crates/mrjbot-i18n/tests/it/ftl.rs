//! Checks on the translation files themselves: same messages, same arguments, all formattable.

use std::collections::{BTreeMap, BTreeSet};

use fluent_bundle::{FluentArgs, FluentBundle, FluentResource};
use fluent_syntax::ast::{Entry, Expression, InlineExpression, Pattern, PatternElement};
use fluent_templates::LanguageIdentifier;
use mrjbot_i18n::{Lang, t};

fn source(lang: Lang) -> String {
    // Every .ftl file of the language, in name order (main.ftl, bot.ftl, ...).
    let dir = format!("{}/locales/{}", env!("CARGO_MANIFEST_DIR"), lang.code());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "ftl"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Message id -> the variables its value refers to.
fn messages(lang: Lang) -> BTreeMap<String, BTreeSet<String>> {
    let src = source(lang);
    let resource = fluent_syntax::parser::parse(src.as_str())
        .unwrap_or_else(|(_, errors)| panic!("{lang}: {errors:?}"));
    let mut out = BTreeMap::new();
    for entry in resource.body {
        match entry {
            Entry::Message(message) => {
                let mut vars = BTreeSet::new();
                if let Some(value) = &message.value {
                    pattern_vars(value, &mut vars);
                }
                let id = message.id.name.to_owned();
                assert!(out.insert(id.clone(), vars).is_none(), "{lang}: {id} twice");
            }
            Entry::Junk { content } => panic!("{lang}: junk {content:?}"),
            _ => {}
        }
    }
    out
}

fn pattern_vars(pattern: &Pattern<&str>, vars: &mut BTreeSet<String>) {
    for element in &pattern.elements {
        if let PatternElement::Placeable { expression } = element {
            expression_vars(expression, vars);
        }
    }
}

fn expression_vars(expression: &Expression<&str>, vars: &mut BTreeSet<String>) {
    match expression {
        Expression::Select { selector, variants } => {
            inline_vars(selector, vars);
            for variant in variants {
                pattern_vars(&variant.value, vars);
            }
        }
        Expression::Inline(inline) => inline_vars(inline, vars),
    }
}

fn inline_vars(inline: &InlineExpression<&str>, vars: &mut BTreeSet<String>) {
    match inline {
        InlineExpression::VariableReference { id } => {
            vars.insert(id.name.to_owned());
        }
        InlineExpression::Placeable { expression } => expression_vars(expression, vars),
        _ => {}
    }
}

#[test]
fn every_language_defines_the_same_messages_with_the_same_arguments() {
    let en = messages(Lang::En);
    for lang in [Lang::Fa, Lang::Ru] {
        let other = messages(lang);
        let en_keys: BTreeSet<_> = en.keys().collect();
        let other_keys: BTreeSet<_> = other.keys().collect();
        assert_eq!(other_keys, en_keys, "keys of {lang} vs en");
        for (key, vars) in &en {
            assert_eq!(other.get(key), Some(vars), "arguments of {key} in {lang}");
        }
    }
}

#[test]
fn the_messages_the_subscription_page_needs_exist() {
    let en = messages(Lang::En);
    let needed = [
        "sub-page-title",
        "sub-status-active",
        "sub-status-on_hold",
        "sub-status-limited",
        "sub-status-expired",
        "sub-status-disabled",
        "sub-status-temporary",
        "sub-expires",
        "sub-never-expires",
        "sub-days-left",
        "sub-data-used",
        "sub-data-unlimited",
        "sub-data-left",
        "sub-link",
        "sub-copy",
        "sub-copied",
        "sub-qr",
        "sub-import",
        "sub-apps",
        "sub-apps-help",
        "sub-configs",
        "sub-support",
        "sub-renew",
        "sub-inactive-remark",
        "sub-updated",
        "sub-platform-android",
        "sub-platform-ios",
        "sub-platform-windows",
        "sub-platform-macos",
        "sub-platform-linux",
        "sub-no-configs",
        "days-count",
    ];
    for key in needed {
        assert!(en.contains_key(key), "{key}");
    }
}

#[test]
fn every_message_formats_without_errors() {
    for lang in Lang::ALL {
        let id: LanguageIdentifier = lang
            .code()
            .parse()
            .unwrap_or_else(|e| panic!("{lang}: {e:?}"));
        let resource = FluentResource::try_new(source(lang))
            .unwrap_or_else(|(_, errors)| panic!("{lang}: {errors:?}"));
        let mut bundle = FluentBundle::new(vec![id]);
        bundle.set_use_isolating(false);
        bundle
            .add_resource(resource)
            .unwrap_or_else(|errors| panic!("{lang}: {errors:?}"));
        for (key, vars) in messages(lang) {
            for n in [0, 1, 2, 5, 21] {
                let mut args = FluentArgs::new();
                for var in &vars {
                    match var.as_str() {
                        "days" => args.set("days", n),
                        other => args.set(other.to_owned(), "x"),
                    }
                }
                let Some(pattern) = bundle.get_message(&key).and_then(|m| m.value()) else {
                    panic!("{lang}: {key} has no value");
                };
                let mut errors = Vec::new();
                let text = bundle.format_pattern(pattern, Some(&args), &mut errors);
                assert!(errors.is_empty(), "{lang}: {key}: {errors:?}");
                assert!(!text.trim().is_empty(), "{lang}: {key} is empty");
            }
            // And through the public API the message is found in this very language.
            if vars.is_empty() {
                let text = t(lang, &key);
                assert_ne!(text, key, "{lang}: {key}");
                // Platform names are the same words in Russian as in English.
                if lang != Lang::En && !key.starts_with("sub-platform-") {
                    assert_ne!(text, t(Lang::En, &key), "{lang}: {key} is not translated")
                }
            }
        }
    }
}
