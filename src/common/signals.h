#pragma once

// Process lifecycle for daemons: SIGTERM and SIGINT ask for a graceful
// shutdown. Call BlockTerminationSignals() first thing in main(), before any
// thread starts, so every thread inherits the mask and the signals are
// taken only by WaitForTerminationSignal().
namespace juke {

void BlockTerminationSignals();

// Blocks until SIGTERM or SIGINT arrives; returns the signal number.
int WaitForTerminationSignal();

}  // namespace juke
