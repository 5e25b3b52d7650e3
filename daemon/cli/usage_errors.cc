// Messages for command lines CLI11 refuses, in the operator's terms: which command is missing or
// unknown and what the choices are; which option is in the wrong place and where it belongs.
// CLI11's own ("A subcommand is required", "The following argument was not expected: --db")
// name neither the command nor the fix.
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"

namespace cyclecast::cli {
namespace {

// "cyclecast models pull".
std::string path_of(const CLI::App& app) {
  const CLI::App* parent = app.get_parent();
  return parent == nullptr ? "cyclecast" : path_of(*parent) + " " + app.get_name();
}

// The chain of commands the command line selected: the main app, then each chosen subcommand.
std::vector<CLI::App*> selected_chain(CLI::App& app) {
  std::vector<CLI::App*> chain = {&app};
  for (;;) {
    const std::vector<CLI::App*> chosen = chain.back()->get_subcommands();
    if (chosen.empty()) return chain;
    chain.push_back(chosen.front());
  }
}

std::string commands_of(CLI::App& app) {
  std::string names;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) {
    if (sub->get_name().empty()) continue;  // option groups
    names.append(names.empty() ? "" : ", ").append(sub->get_name());
  }
  return names;
}

// Every command under `app` (itself included) that has the option `name`.
void commands_with_option(CLI::App& app, const std::string& name, std::vector<CLI::App*>& out) {
  if (!app.get_name().empty() || app.get_parent() == nullptr) {
    for (const CLI::Option* option : app.get_options()) {
      if (option->check_name(name)) {
        out.push_back(&app);
        break;
      }
    }
  }
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    commands_with_option(*sub, name, out);
}

std::string missing_command(CLI::App& where) {
  const std::vector<std::string> left = where.remaining();
  std::ostringstream text;
  text << path_of(where) << ": ";
  if (!left.empty() && left.front().rfind('-', 0) != 0) {
    text << "unknown command '" << left.front() << "'";
  } else {
    text << "a command is needed";
  }
  text << "; one of: " << commands_of(where) << " (see " << path_of(where) << " --help)";
  return text.str();
}

std::string misplaced_option(CLI::App& root, CLI::App& where, CLI::App& chosen,
                             const std::string& arg) {
  const std::string name = arg.substr(0, arg.find('='));
  std::vector<CLI::App*> owners;
  commands_with_option(root, name, owners);
  std::ostringstream text;
  text << path_of(where) << ": ";
  for (CLI::App* owner : owners) {
    if (owner == &chosen && &where != &chosen) {
      text << name << " is an option of " << path_of(chosen) << ": put it after the command ("
           << path_of(chosen) << " ... " << name << ")";
      return text.str();
    }
  }
  if (owners.empty()) {
    text << "unknown option " << name << " (see " << path_of(chosen) << " --help)";
    return text.str();
  }
  text << name << " is not an option of " << path_of(chosen) << "; it is one of ";
  for (std::size_t i = 0; i < owners.size(); ++i)
    text << (i > 0 ? ", " : "") << path_of(*owners[i]);
  if (owners.front()->get_parent() == nullptr && chosen.get_parent() != nullptr) {
    const std::string command = path_of(chosen).substr(std::string("cyclecast ").size());
    text << ", and goes before the command (cyclecast " << name << " VALUE " << command << " ...)";
  }
  return text.str();
}

std::string unexpected_arguments(CLI::App& root) {
  std::vector<CLI::App*> chain = selected_chain(root);
  CLI::App& chosen = *chain.back();
  for (CLI::App* where : chain) {
    const std::vector<std::string> left = where->remaining();
    if (left.empty()) continue;
    if (left.front().rfind('-', 0) == 0 && left.front() != "-" && left.front() != "--") {
      return misplaced_option(root, *where, chosen, left.front());
    }
    return path_of(*where) + ": unexpected argument '" + left.front() + "' (see " +
           path_of(chosen) + " --help)";
  }
  return {};
}

}  // namespace

std::string explain_parse_error(CLI::App& app, const CLI::ParseError& error) {
  const std::string what = error.what();
  // By type: CLI11 names an ExtrasError after the command that threw it, not its kind.
  if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr &&
      what.rfind("A subcommand", 0) == 0) {
    return missing_command(*selected_chain(app).back());
  }
  if (dynamic_cast<const CLI::ExtrasError*>(&error) != nullptr) return unexpected_arguments(app);
  if (dynamic_cast<const CLI::RequiredError*>(&error) != nullptr ||
      dynamic_cast<const CLI::ArgumentMismatch*>(&error) != nullptr) {
    // "cell is required": say of which command.
    const std::string command = path_of(*selected_chain(app).back());
    return command + ": " + what + " (see " + command + " --help)";
  }
  return {};
}

}  // namespace cyclecast::cli
