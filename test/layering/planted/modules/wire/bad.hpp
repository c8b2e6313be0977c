#include "pixtream/swarm/x.hpp"
