// juke: the admin CLI of a Juke storage pool. See src/cli/cli.h.
#include <iostream>
#include <string>
#include <vector>

#include "src/cli/cli.h"

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  return juke::cli::RunCli(args, std::cout, std::cerr);
}
