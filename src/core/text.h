// Byte-string helpers for file names, which are bytes and not necessarily UTF-8.
#pragma once

#include <string>
#include <string_view>

namespace fstrail {

bool is_valid_utf8(std::string_view bytes);
std::string base64_encode(std::string_view bytes);
std::string base64_decode(std::string_view text);  // ignores characters outside the alphabet

// For one-line human output: control characters and invalid UTF-8 shown as \n, \t, \xNN.
std::string escape_for_terminal(std::string_view bytes);

}  // namespace fstrail
