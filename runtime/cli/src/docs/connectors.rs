//! `connectors.md`: every built-in connector and its configuration keys,
//! from the same definitions that validate a submitted config.

use std::fmt::Write;

use sluice_connector_api::{ConfigDef, ConfigKey, ConfigType};

use super::markdown::{cell, code_or_dash, generated_banner};
use sluice_runtime::herder::validation::common_def;
use sluice_runtime::plugins::PluginRegistry;

/// The page.
pub fn page(plugins: &PluginRegistry) -> String {
    let mut out = generated_banner("Connector configuration reference");
    out.push_str(
        "Connector configs are JSON objects of string keys and values, submitted \
         with `POST /connectors` or `PUT /connectors/{name}/config` (see \
         [rest-api.md](rest-api.md)). Keys and defaults follow Debezium and Kafka \
         Connect, so an existing Debezium config works unchanged. A wrong value is \
         a validation error naming the key; an unknown key is kept and logged as a \
         warning. Any value may be a placeholder, `${env:NAME}` or \
         `${file:/path:key}`, resolved only when a task starts; secrets are never \
         shown by the REST API.\n\n",
    );
    out.push_str("| Connector class | Also accepted as | Type |\n|---|---|---|\n");
    for info in plugins.infos() {
        let aliases: Vec<String> = info.aliases.iter().map(|a| format!("`{a}`")).collect();
        let _ = writeln!(
            out,
            "| [`{}`](#{}) | {} | {} |",
            info.class,
            anchor(info.class),
            aliases.join(", "),
            info.kind.as_str()
        );
    }
    out.push_str("\n## Keys every connector accepts\n\n");
    out.push_str(
        "Converter settings go under the converter's prefix, e.g. \
         `value.converter.schemas.enable` (JSON) or \
         `value.converter.schema.registry.url`, \
         `value.converter.auto.register.schemas` and \
         `value.converter.value.subject.name.strategy` (Avro); unset ones come \
         from the worker (`--key-converter`, `--value-converter`, the `[converters]` \
         table of its config file, see [cli.md](cli.md)).\n\n",
    );
    keys_table(&mut out, &common_def());
    transforms_section(&mut out);
    fates_section(&mut out);
    for plugin in plugins_in_order(plugins) {
        let info = plugin.info();
        let _ = writeln!(out, "\n## `{}`\n", info.class);
        let _ = writeln!(
            out,
            "A {} connector, version {}. Accepted as `connector.class`: `{}`{}.\n",
            info.kind.as_str(),
            info.version,
            info.class,
            info.aliases
                .iter()
                .map(|a| format!(", `{a}`"))
                .collect::<String>()
        );
        keys_table(&mut out, &plugin.config_def());
    }
    out
}

/// The transform and predicate classes, and the column rule keys.
fn transforms_section(out: &mut String) {
    out.push_str(
        "## Transforms and predicates\n\n\
         `transforms` lists aliases applied in order, each configured by \
         `transforms.<alias>.type` (the class, Connect's or Debezium's name; the \
         simple name such as `RegexRouter` also works) and its own \
         `transforms.<alias>.*` keys, optionally guarded by \
         `transforms.<alias>.predicate` (an alias in `predicates`, configured by \
         `predicates.<alias>.type`) and `transforms.<alias>.negate`. Source \
         connectors apply them between the connector and the converter, sinks \
         between the converter and the connector. A record a transform cannot \
         handle goes through `errors.tolerance`. A class not listed here is \
         refused with the key to fix.\n\n",
    );
    out.push_str("| Transform class |\n|---|\n");
    for class in sluice_runtime::transforms::catalog::TRANSFORMS {
        let _ = writeln!(out, "| `{class}` |");
    }
    out.push_str("\n| Predicate class |\n|---|\n");
    for class in sluice_runtime::transforms::catalog::PREDICATE_CLASSES {
        let _ = writeln!(out, "| `{class}` |");
    }
    out.push_str(
        "\nSource connectors also accept Debezium's `column.mask.with.<n>.chars` \
         (values of the matching character columns become n asterisks) and \
         `column.truncate.to.<n>.chars` (cut to n characters), each a list of \
         regular expressions of `<schema>.<table>.<column>` \
         (`<database>.<table>.<column>` for MySQL); they apply before any \
         transform.\n\n",
    );
}

/// Debezium and Connect keys sluice knows but does not define.
fn fates_section(out: &mut String) {
    use sluice_runtime::herder::key_fates::{all, Fate};
    out.push_str(
        "## Debezium keys sluice does not implement\n\n\
         Keys that would change what is written are refused with a 400 naming \
         them, rather than accepted and ignored; tuning keys of the Java \
         implementation are accepted without effect and logged with the \
         reason. A key ending in `*` stands for every key with that prefix.\n\n\
         | Key | Fate | Why |\n|---|---|---|\n",
    );
    for (key, fate) in all() {
        let (what, why) = match fate {
            Fate::Refused(why) => ("refused".to_owned(), why),
            Fate::DefaultOnly(default, why) => (format!("only `{default}`"), why),
            Fate::NoEffect(why) => ("accepted, no effect".to_owned(), why),
        };
        let _ = writeln!(out, "| `{key}` | {what} | {} |", cell(why));
    }
    out.push('\n');
}

fn plugins_in_order(plugins: &PluginRegistry) -> Vec<sluice_runtime::plugins::Plugin> {
    let mut infos = plugins.infos();
    infos.sort_by_key(|i| i.class);
    infos.iter().filter_map(|i| plugins.find(i.class)).collect()
}

/// GitHub's anchor for a `## \`class\`` heading.
fn anchor(class: &str) -> String {
    class
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One table per group, in the order the definitions declare them.
fn keys_table(out: &mut String, def: &ConfigDef) {
    let mut groups: Vec<&str> = Vec::new();
    for key in def.keys() {
        if !groups.contains(&key.group) {
            groups.push(key.group);
        }
    }
    for group in groups {
        let _ = writeln!(out, "### {group}\n");
        out.push_str("| Key | Type | Default | Description |\n|---|---|---|---|\n");
        for key in def.keys().iter().filter(|k| k.group == group) {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {}{} |",
                key.name,
                type_name(key.ty),
                default_of(key),
                cell(key.documentation),
                allowed_of(key)
            );
        }
        out.push('\n');
    }
}

fn default_of(key: &ConfigKey) -> String {
    match key.default {
        _ if key.required => "**required**".to_owned(),
        Some(value) => code_or_dash(value),
        None => "–".to_owned(),
    }
}

fn allowed_of(key: &ConfigKey) -> String {
    if key.allowed.is_empty() {
        return String::new();
    }
    let values: Vec<String> = key.allowed.iter().map(|v| format!("`{v}`")).collect();
    format!(" One of {}.", values.join(", "))
}

fn type_name(ty: ConfigType) -> &'static str {
    match ty {
        ConfigType::Boolean => "boolean",
        ConfigType::String => "string",
        ConfigType::Int => "int",
        ConfigType::Long => "long",
        ConfigType::Double => "double",
        ConfigType::List => "list",
        ConfigType::Class => "class",
        ConfigType::Password => "password",
    }
}
