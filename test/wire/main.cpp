#define BOOST_TEST_MODULE pixtream wire
#include <boost/test/unit_test.hpp>
