// Tables for people: columns padded to their widest cell (so they stay aligned whatever the
// length of an id), two spaces apart, the last column unpadded.
#pragma once

#include <iostream>
#include <string>
#include <vector>

namespace cyclecast::cli {

using TableRows = std::vector<std::vector<std::string>>;

// Widths count UTF-8 code points, not bytes, so that "μ" takes one column.
void print_table(const TableRows& rows, std::ostream& out = std::cout);

}  // namespace cyclecast::cli
