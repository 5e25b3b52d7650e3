#include "commands.h"

namespace cyclecast::cli {

void add_simulate_command(CLI::App& /*app*/, GlobalOptions& /*global*/) {}

}  // namespace cyclecast::cli
