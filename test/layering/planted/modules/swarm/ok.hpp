#include "pixtream/core/ids.hpp"
