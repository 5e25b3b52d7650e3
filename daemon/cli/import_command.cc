#include "commands.h"

namespace cyclecast::cli {

void add_import_command(CLI::App& /*app*/, GlobalOptions& /*global*/) {}

}  // namespace cyclecast::cli
