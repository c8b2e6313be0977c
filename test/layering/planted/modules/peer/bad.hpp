#include "pixtream/stream/output_server.hpp"
