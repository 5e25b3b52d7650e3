#include "commands.h"

namespace cyclecast::cli {

void add_db_commands(CLI::App& /*app*/, GlobalOptions& /*global*/) {}

}  // namespace cyclecast::cli
